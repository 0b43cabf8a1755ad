/** Runs an app until every partition is caught up, configured from the environment. */
import { type App, consoleLogger, createWorker, KafkajsPartitionReader } from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
}

export async function runUntilCaughtUp(app: App): Promise<void> {
  const logger = consoleLogger({ level: 'warn' });
  const store = new PostgresStore({ connectionString: env('DATABASE_URL'), schema: env('ONCELY_SCHEMA') });
  await store.migrate();
  const worker = createWorker(app, {
    store,
    reader: new KafkajsPartitionReader({ brokers: env('KAFKA_BROKERS').split(','), logger }),
    initialOffset: 'earliest',
    until: 'caught-up',
    logger,
  });
  await worker.start();
  await worker.done;
  console.log(`worker ${worker.state}`);
  if (worker.state !== 'stopped') process.exitCode = 1;
}
