import type { TestProject } from 'vitest/node';
import { up } from '../../scripts/services/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    databaseUrl: string;
  }
}

/** Makes the real broker and database available once per run; test files read them with inject(). */
export default async function setup(project: TestProject): Promise<void> {
  const services = await up();
  project.provide('kafkaBrokers', services.kafka.brokers);
  project.provide('databaseUrl', services.postgres.url);
  // Child processes that tests start (workers, the CLI) find the services through the environment.
  process.env.KAFKA_BROKERS = services.kafka.brokers.join(',');
  process.env.DATABASE_URL = services.postgres.url;
}
