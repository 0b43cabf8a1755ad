/**
 * What every benchmark entry point does before it measures (`pnpm bench`, `bench:scale`,
 * `bench:recovery` with and without `--kill`, and the PostgreSQL-only `bench:membership` and
 * batch-cost): build what it measures, bring up the services, prepare or reuse its topics, and,
 * for `pnpm bench`, the CHECKPOINT before each scenario. Each entry point keeps its own options.
 */
import pg from 'pg';
import { type Services, up } from '../scripts/services/index.js';
import { BuildError, buildForBench } from './build.js';
import { type PreparedTopic, prepareTopic } from './produce.js';

/** The value size of the benchmark's records unless an entry point's options say otherwise. */
export const DEFAULT_VALUE_BYTES = 150;

/**
 * The topic of these records. Every entry point names its topics so, so that they reuse each
 * other's (`bench:scale`'s base topic is `pnpm bench`'s).
 */
export function benchTopic(records: number, partitions: number, valueBytes: number): string {
  return `oncely-bench-${records}r-${partitions}p-${valueBytes}b`;
}

/**
 * Builds the packages and the bench's entry points (build.ts). Returns false, having said what to
 * fix, when a build failed: the entry point then exits with 1.
 */
export function build(log?: (line: string) => void): boolean {
  try {
    buildForBench(log);
    return true;
  } catch (e) {
    if (e instanceof BuildError) {
      console.error(e.message);
      return false;
    }
    throw e;
  }
}

export interface BenchServices {
  services: Services;
  brokers: string[];
  databaseUrl: string;
}

/** A real Kafka broker and PostgreSQL: `up()` of scripts/services (KAFKA_BROKERS and DATABASE_URL override). */
export async function startServices(): Promise<BenchServices> {
  const services = await up();
  return { services, brokers: services.kafka.brokers, databaseUrl: services.postgres.url };
}

/**
 * PostgreSQL alone, for the benchmarks that need no Kafka: DATABASE_URL when set (no broker is
 * started then), else the project's services.
 */
export async function databaseOnly(): Promise<string> {
  return process.env.DATABASE_URL ?? (await up()).postgres.url;
}

export interface TopicSpec {
  /** Default: {@link benchTopic} of the records. */
  topic?: string | undefined;
  records: number;
  partitions: number;
  valueBytes: number;
}

/** Prepares each topic in turn (reused when it already holds exactly its records; see produce.ts). */
export async function prepareTopics(
  brokers: string[],
  topics: readonly TopicSpec[],
  log: (line: string) => void = console.log,
): Promise<PreparedTopic[]> {
  const prepared: PreparedTopic[] = [];
  for (const t of topics)
    prepared.push(
      await prepareTopic({
        brokers,
        topic: t.topic ?? benchTopic(t.records, t.partitions, t.valueBytes),
        partitions: t.partitions,
        records: t.records,
        valueBytes: t.valueBytes,
        log,
      }),
    );
  return prepared;
}

/**
 * A CHECKPOINT before a scenario: PostgreSQL writes out what the scenario before left dirty
 * (per-message leaves a million small transactions behind) now, not during the next one's window.
 * It needs a superuser or pg_checkpoint; without it, it says so once and the scenarios run without.
 */
export class Checkpoints {
  private warned = false;

  constructor(private readonly databaseUrl: string) {}

  async before(): Promise<void> {
    const why = await checkpoint(this.databaseUrl);
    if (why && !this.warned) {
      this.warned = true;
      console.log(`bench: CHECKPOINT before each scenario failed (${why}); the scenarios run without it`);
    }
  }
}

/** Runs a CHECKPOINT; returns why it could not, else undefined. */
async function checkpoint(databaseUrl: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'oncely-bench-checkpoint' });
  try {
    await client.connect();
    await client.query('checkpoint');
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await client.end().catch(() => {});
  }
}
