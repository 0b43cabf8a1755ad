/** Builds real workers for integration tests: a PostgresStore in a fresh schema and the kafkajs reader. */
import { type App, createWorker, KafkajsPartitionReader, silentLogger, type Worker, type WorkerOptions } from '@oncely/core';
import { until as waitUntil } from '@oncely/core/testing';
import { PostgresStore } from '@oncely/postgres-offsets';
import type { Knex } from 'knex';
import { cleanup } from './cleanup.js';
import { brokers, databaseUrl } from './fixtures.js';

/** A migrated store in this schema; closed after the test (or the file) unless a worker closes it first. */
export async function pgStore(schema: string): Promise<PostgresStore> {
  const store = new PostgresStore({ connectionString: databaseUrl(), schema, poolMax: 6 });
  cleanup(() => store.close());
  await store.migrate();
  return store;
}

/** A worker over the real broker and database, stopped after the test if the test did not. */
export async function realWorker(
  app: App<Knex.Transaction>,
  schema: string,
  options: Partial<WorkerOptions<Knex.Transaction>> = {},
): Promise<Worker<Knex.Transaction>> {
  const store = options.store ?? (await pgStore(schema));
  const worker = createWorker(app, {
    logger: silentLogger,
    fetchMaxWaitMs: 100,
    retryInitialDelayMs: 20,
    retryMaxDelayMs: 200,
    ...options,
    store,
    reader: options.reader ?? new KafkajsPartitionReader({ brokers: brokers(), logger: silentLogger }),
  });
  // Registered after its store's: cleanups run as a stack, so the worker stops before the store closes.
  cleanup(() => worker.abort().catch(() => {}));
  return worker;
}

/** Polls until cond() holds (every 50 ms, up to a minute: real services are slower); fails naming what it waited for. */
export function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  return waitUntil(cond, what, timeoutMs, 50);
}
