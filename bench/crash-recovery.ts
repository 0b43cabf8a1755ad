/**
 * `pnpm bench:recovery`: how fast a worker catches up after an unclean hand-over (its partitions'
 * previous holder died without releasing them) against a normal catch-up, in the same run, on the
 * same topic, with the same message handler (one INSERT per record through ctx.tx).
 *
 * Three catch-ups of every record of the topic, each from a cold start (fresh group, fresh
 * offsets schema, fresh table), bounded with `until: 'caught-up'`:
 *
 * - normal:      no previous holder;
 * - unclean:     every partition was claimed by a worker that died (no release, its lease ran out),
 *                so the claims are suspect, with no crash history (the common case: one SIGKILL);
 * - two deaths:  as unclean, and each partition's first batch was in flight at two deaths, so the
 *                worker narrows that batch down (by halves, one piece at a time across the worker)
 *                before it goes on normally.
 *
 * Prints records/s of each and its ratio to normal. Options: --records (10000), --partitions (4),
 * --batch-max-records (2000). Uses the services of `pnpm services up` (or KAFKA_BROKERS /
 * DATABASE_URL).
 *
 * `--kill` measures instead a real SIGKILL (kill.ts): a worker process draining a backlog is
 * killed after 25 s (`--steady`) and started again, and the records/s of the first 60 s after the
 * restart are compared with the steady state before the kill, in the same run.
 */
import { parseArgs } from 'node:util';
import { consoleLogger, createWorker, defineApp, json, KafkajsPartitionReader } from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import type { Knex } from 'knex';
import pg from 'pg';
import { startWindow, suffix } from './measure.js';
import { benchTopic, DEFAULT_VALUE_BYTES, prepareTopics, startServices } from './prologue.js';
import { createRowsTable, dropSchema } from './scenarios/tables.js';

type Mode = 'normal' | 'unclean' | 'two deaths';

const { values } = parseArgs({
  options: {
    records: { type: 'string' },
    partitions: { type: 'string' },
    'batch-max-records': { type: 'string', default: '2000' },
    kill: { type: 'boolean', default: false },
    handler: { type: 'string', default: 'batch-ledger' },
    reader: { type: 'string', default: 'kafkajs' },
    steady: { type: 'string', default: '25' },
    window: { type: 'string', default: '60' },
    'lease-ms': { type: 'string' },
    'restart-as': { type: 'string', default: 'new' },
    drain: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
});
if (values.kill) {
  const { DEFAULT_KILL_RECORDS, killRecovery } = await import('./kill.js');
  process.exit(
    await killRecovery({
      records: Number(values.records ?? DEFAULT_KILL_RECORDS),
      partitions: Number(values.partitions ?? 6),
      batchMaxRecords: Number(values['batch-max-records']),
      handler: values.handler,
      reader: values.reader,
      steadySec: Number(values.steady),
      windowSec: Number(values.window),
      leaseMs: values['lease-ms'] === undefined ? undefined : Number(values['lease-ms']),
      restartAs: values['restart-as'] as 'new' | 'same',
      drain: values.drain,
      profile: values.profile,
    }),
  );
}
values.records ??= '10000';
values.partitions ??= '4';
const records = Number(values.records);
const partitions = Number(values.partitions);
const batchMaxRecords = Number(values['batch-max-records']);
const valueBytes = DEFAULT_VALUE_BYTES;

const { brokers, databaseUrl } = await startServices();
const topic = benchTopic(records, partitions, valueBytes);
await prepareTopics(brokers, [{ topic, partitions, records, valueBytes }]);

async function catchUp(mode: Mode): Promise<{ ms: number; applied: number }> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'oncely-bench-recovery' });
  await client.connect();
  const dataSchema = `bench_recovery_${suffix()}`;
  const offsetsSchema = `bench_recovery_oncely_${suffix()}`;
  try {
    const table = await createRowsTable(client, dataSchema);
    const store = new PostgresStore({ connectionString: databaseUrl, schema: offsetsSchema, poolMax: partitions + 2 });
    await store.migrate();
    const group = `oncely-bench-recovery-${suffix()}`;
    if (mode !== 'normal') {
      // The previous holder: claims every partition at 0, maybe writes what it had in flight, dies.
      for (let partition = 0; partition < partitions; partition++) {
        const claim = await store.claim({ group, topic, partition, workerId: 'died', initialOffset: 0n, leaseMs: 1_000 });
        if (mode === 'two deaths')
          await store.recordInFlight(claim, { from: 0n, to: BigInt(batchMaxRecords), deaths: 2, alone: 0 });
      }
      await new Promise((r) => setTimeout(r, 1_100)); // its lease runs out
    }
    const sql = `insert into ${table} (topic, partition, "offset", key, value) values (?, ?, ?, ?, ?)`;
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json<unknown>() }, async (m, ctx) => {
      await ctx.tx.raw(sql, [
        m.topic,
        m.partition,
        m.offset.toString(),
        m.key?.toString('utf8') ?? null,
        JSON.stringify(m.value),
      ]);
    });
    const logger = consoleLogger({ level: 'warn' });
    const worker = createWorker(app, {
      store,
      reader: new KafkajsPartitionReader({ brokers, logger }),
      logger,
      until: 'caught-up',
      batchMaxRecords,
    });
    const end = startWindow();
    await worker.start();
    await worker.done;
    const { activeMs } = end();
    const applied = worker.progress().reduce((n, p) => n + p.committedRecords, 0);
    const { rows } = await client.query<{ n: string }>(`select count(*)::text as n from ${table}`);
    if (applied !== records || Number(rows[0]!.n) !== records)
      throw new Error(`${mode}: ${rows[0]!.n} rows, ${applied} records committed, of ${records}`);
    return { ms: activeMs, applied };
  } finally {
    await dropSchema(client, dataSchema).catch(() => {});
    await dropSchema(client, offsetsSchema).catch(() => {});
    await client.end();
  }
}

const results = new Map<Mode, number>();
for (const mode of ['normal', 'unclean', 'two deaths'] as const) {
  const { ms } = await catchUp(mode);
  results.set(mode, ms);
}
const normal = results.get('normal')!;
console.log(`catch-up of ${records} records in ${partitions} partitions, batchMaxRecords ${batchMaxRecords}, message handler:`);
for (const [mode, ms] of results) {
  const rate = Math.round(records / (ms / 1000));
  console.log(
    `  ${mode.padEnd(10)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${String(rate).padStart(7)} records/s  ` +
      `${(normal / ms).toFixed(2)} × normal`,
  );
}
