/**
 * The oncely scenarios (ONCELY_SCENARIOS in config.ts): an oncely worker over the whole topic, from
 * a cold start (fresh group, fresh offsets schema, fresh table), bounded with `until: 'caught-up'`
 * so it stops by itself at the high watermarks, with the handler and reader its OncelyConfig names
 * (oncely-app.ts, readers.ts). Commit latencies come from the `commit` event; the window starts
 * when start() resolves. Every run is checked against what was produced.
 */
import { consoleLogger, createWorker, json } from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import pg from 'pg';
import type { OncelyConfig, ScenarioInput } from '../config.js';
import { startWindow, suffix } from '../measure.js';
import { Stages } from '../stages.js';
import { benchApp, checkTable, createTable, type Payment } from './oncely-app.js';
import { makeReader } from './readers.js';
import { dropSchema } from './tables.js';
import type { Outcome } from './types.js';

export async function oncely(input: ScenarioInput, config: OncelyConfig): Promise<Outcome> {
  const client = new pg.Client({ connectionString: input.databaseUrl, application_name: 'oncely-bench-setup' });
  await client.connect();
  const name = input.scenario.replace(/^oncely-/, '').replaceAll('-', '_');
  const dataSchema = `bench_${name}_${suffix()}`;
  const offsetsSchema = `bench_oncely_${suffix()}`;
  try {
    const table = await createTable(client, config.handler, dataSchema);
    const store = new PostgresStore({
      connectionString: input.databaseUrl,
      schema: offsetsSchema,
      poolMax: input.partitions + 2,
      applicationName: `oncely-bench-${name}`,
      unsafeUnfencedCommitsForBenchmarks: !config.fenced,
    });
    await store.migrate();
    const logger = consoleLogger({ level: 'warn' });
    const reader = makeReader(config.reader, input.brokers, logger);
    const stages = input.stages ? new Stages() : undefined;
    // The rows handler writes each value's bytes to a jsonb column, which checks them: it has no use
    // for the parsed value (--rows-codec eager parses it anyway, as before).
    const base = json<Payment>({ lazy: config.handler === 'batch-rows' && input.rowsCodec === 'lazy' });
    const codec = stages ? stages.codec(base) : base;
    const app = benchApp({
      group: `oncely-bench-${name}-${suffix()}`,
      topic: input.topic,
      handler: config.handler,
      table,
      codec,
      ...(stages ? { timed: (fn) => stages.handler(fn) } : {}),
    });

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
    const t = await checkTable(client, config.handler, table, input);
    const ok = t.ok && applied === input.records;
    const check = `${t.check}, ${applied} records committed`;
    return { records: applied, ok, check, window, commitDurations, ...(stages ? { stages: stages.result() } : {}) };
  } finally {
    await dropSchema(client, dataSchema).catch(() => {});
    await dropSchema(client, offsetsSchema).catch(() => {});
    await client.end();
  }
}
