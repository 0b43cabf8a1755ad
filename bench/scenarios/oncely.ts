/**
 * Scenarios 4–7: an oncely worker over the whole topic, from a cold start (fresh group, fresh
 * offsets schema, fresh table), bounded with `until: 'caught-up'` so it stops by itself at the high
 * watermarks. Commit latencies come from the `commit` event; the window starts when start() resolves.
 *
 * - message:        a message handler, one INSERT per record through ctx.tx;
 * - batch-rows:     a batch handler, one copyRows() (COPY in the transaction) of the batch's rows;
 * - batch-ledger:   a batch handler adding the batch's amounts per account to balances (one upsert
 *                   of at most 1,000 rows);
 * - batch-rows-unfenced: batch-rows with the store's benchmark-only unfenced commits.
 *
 * Every run is checked against what was produced: the row count, or the sums of the balances.
 */
import { type Batch, consoleLogger, createWorker, defineApp, json, KafkajsPartitionReader, type Message } from '@oncely/core';
import { copyRows, PostgresStore } from '@oncely/postgres-offsets';

const ROW_COLUMNS = ['topic', 'partition', 'offset', 'key', 'value'];

import type { Knex } from 'knex';
import pg from 'pg';
import type { ScenarioInput } from '../config.js';
import { startWindow, suffix } from '../measure.js';
import { Stages } from '../stages.js';
import { createBalancesTable, createRowsTable, dropSchema } from './tables.js';
import type { Outcome } from './types.js';

export type OncelyVariant = 'message' | 'batch-rows' | 'batch-ledger' | 'batch-rows-unfenced';

/** A record's value as produced by data.ts. */
interface Payment {
  seq: number;
  account: string;
  cents: number;
  pad: string;
}

type Ctx = { tx: Knex.Transaction };

export async function oncely(input: ScenarioInput, variant: OncelyVariant): Promise<Outcome> {
  const client = new pg.Client({ connectionString: input.databaseUrl, application_name: 'oncely-bench-setup' });
  await client.connect();
  const dataSchema = `bench_${variant.replaceAll('-', '_')}_${suffix()}`;
  const offsetsSchema = `bench_oncely_${suffix()}`;
  try {
    const table =
      variant === 'batch-ledger' ? await createBalancesTable(client, dataSchema) : await createRowsTable(client, dataSchema);
    const store = new PostgresStore({
      connectionString: input.databaseUrl,
      schema: offsetsSchema,
      poolMax: input.partitions + 2,
      applicationName: `oncely-bench-${variant}`,
      unsafeUnfencedCommitsForBenchmarks: variant === 'batch-rows-unfenced',
    });
    await store.migrate();
    const logger = consoleLogger({ level: 'warn' });
    const reader = new KafkajsPartitionReader({ brokers: input.brokers, logger });
    const stages = input.stages ? new Stages() : undefined;
    const codec = stages ? stages.codec(json<Payment>()) : json<Payment>();
    const timed = <A extends unknown[]>(fn: (...args: A) => Promise<void>) => (stages ? stages.handler(fn) : fn);
    const group = `oncely-bench-${variant}-${suffix()}`;
    const app = defineApp({ group });

    if (variant === 'message') {
      const sql = `insert into ${table} (topic, partition, "offset", key, value) values (?, ?, ?, ?, ?)`;
      app.handle(
        { topic: input.topic, codec },
        timed(async (m: Message<Payment>, ctx: Ctx) => {
          await ctx.tx.raw(sql, [
            m.topic,
            m.partition,
            m.offset.toString(),
            m.key?.toString('utf8') ?? null,
            JSON.stringify(m.value),
          ]);
        }),
      );
    } else if (variant === 'batch-ledger') {
      const sql = `insert into ${table} (account, cents, records)
        select * from unnest(?::text[], ?::bigint[], ?::bigint[])
        on conflict (account) do update set cents = balances.cents + excluded.cents, records = balances.records + excluded.records`;
      app.handleBatch(
        { topic: input.topic, codec },
        timed(async (batch: Batch<Payment>, ctx: Ctx) => {
          const sums = new Map<string, { cents: number; records: number }>();
          for (const m of batch.messages) {
            const s = sums.get(m.value.account);
            if (s) {
              s.cents += m.value.cents;
              s.records++;
            } else sums.set(m.value.account, { cents: m.value.cents, records: 1 });
          }
          const accounts = [...sums.keys()];
          await ctx.tx.raw(sql, [accounts, accounts.map((a) => sums.get(a)!.cents), accounts.map((a) => sums.get(a)!.records)]);
        }),
      );
    } else {
      app.handleBatch(
        { topic: input.topic, codec },
        timed(async (batch: Batch<Payment>, ctx: Ctx) => {
          // copyRows: COPY on the transaction's connection; the value column takes the record's
          // JSON text as it came (the decoded value was validated by the codec).
          await copyRows(
            ctx.tx,
            table,
            ROW_COLUMNS,
            batch.messages.map((m) => [
              m.topic,
              m.partition,
              m.offset,
              m.key?.toString('utf8') ?? null,
              m.raw.value?.toString('utf8'),
            ]),
          );
        }),
      );
    }

    const commitDurations: number[] = [];
    const worker = createWorker(app, {
      store: stages ? stages.store(store) : store,
      reader: stages ? stages.reader(reader) : reader,
      logger,
      until: 'caught-up',
      batchMaxRecords: input.batchMaxRecords,
      ...(input.fetchMaxBytesPerPartition ? { fetchMaxBytesPerPartition: input.fetchMaxBytesPerPartition } : {}),
    });
    worker.on('commit', (c) => {
      if (c.records > 0) commitDurations.push(c.durationMs);
    });
    await worker.start();
    const end = startWindow();
    await worker.done;
    const window = end();
    const applied = worker.progress().reduce((n, p) => n + p.committedRecords, 0);

    let ok: boolean;
    let check: string;
    if (variant === 'batch-ledger') {
      const { rows } = await client.query<{ cents: string | null; records: string | null; accounts: string }>(
        `select sum(cents)::text as cents, sum(records)::text as records, count(*)::text as accounts from ${table}`,
      );
      const r = rows[0]!;
      ok = r.cents === input.totalCents && Number(r.records) === input.records && applied === input.records;
      check = `sum(cents) ${r.cents} (expected ${input.totalCents}), sum(records) ${r.records} of ${input.records}, ${r.accounts} accounts`;
    } else {
      const { rows } = await client.query<{ n: string }>(`select count(*)::text as n from ${table}`);
      const n = Number(rows[0]!.n);
      ok = n === input.records && applied === input.records;
      check = `${n} rows of ${input.records}, ${applied} records committed`;
    }
    return { records: applied, ok, check, window, commitDurations, ...(stages ? { stages: stages.result() } : {}) };
  } finally {
    await dropSchema(client, dataSchema).catch(() => {});
    await dropSchema(client, offsetsSchema).catch(() => {});
    await client.end();
  }
}
