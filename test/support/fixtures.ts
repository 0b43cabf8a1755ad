/**
 * Fixtures for integration tests: each thing a test makes (a schema, a topic) is named at random
 * and removed by the fixture that made it, after the test file (kept when ONCELY_KEEP_TEST_DATA=1).
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
// oncely's fixes of kafkajs 2.2.4 (no TimeoutNegativeWarning on Node 24, no listener leak on a dead
// socket) for this process's own kafkajs clients too: they share the copy the adapter patches.
import '../../packages/core/src/kafkajs/internals.js';
import pg from 'pg';
import { afterAll, inject } from 'vitest';

const keep = process.env.ONCELY_KEEP_TEST_DATA === '1';
const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch((e) => console.warn('cleanup failed:', e));
});

/** A short random suffix for names that must not collide between tests or runs. */
export function randomName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** Fails unless the packages' dist was built from the current sources (by the global setup). */
export function requireBuild(): void {
  const error = inject('buildError');
  if (error) throw new Error(error);
}

export function brokers(): string[] {
  return inject('kafkaBrokers');
}

export function databaseUrl(): string {
  return inject('databaseUrl');
}

export function kafkaClient(clientId = 'oncely-test'): Kafka {
  return new Kafka({ clientId, brokers: brokers(), logLevel: logLevel.NOTHING });
}

let sharedPool: pg.Pool | undefined;

/** The file's pg pool for assertions (one per test file, made on first use), closed after the file. */
export function pgPool(): pg.Pool {
  if (!sharedPool) {
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 4 });
    sharedPool = pool;
    cleanups.push(async () => {
      sharedPool = undefined;
      await pool.end();
    });
  }
  return sharedPool;
}

/** A fresh schema name (not created: migrations create it), dropped after the file. */
export function freshSchema(prefix = 't'): string {
  const schema = randomName(prefix).toLowerCase();
  cleanups.push(async () => {
    if (keep) return;
    const client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    try {
      await client.query(`drop schema if exists ${schema} cascade`);
    } finally {
      await client.end();
    }
  });
  return schema;
}

/** Creates a topic with this many partitions (and extra topic configs), deleted after the file. */
export async function createTopic(
  partitions: number,
  opts: { prefix?: string; configEntries?: Array<{ name: string; value: string }> } = {},
): Promise<string> {
  const topic = randomName(opts.prefix ?? 'topic');
  // A broker that has just started can refuse or time out the first requests (no controller yet,
  // leaders not elected): retriable errors are retried a few times, a topic made by an attempt that
  // then failed counts, and the leaders of every partition are waited for.
  for (let attempt = 1; ; attempt++) {
    const admin = kafkaClient().admin();
    try {
      await admin.connect();
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries: opts.configEntries ?? [] }],
      });
      const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      const led = meta?.partitions.filter((p) => p.leader >= 0).length ?? 0;
      if (led !== partitions)
        throw Object.assign(new Error(`${led} of ${partitions} partitions have a leader`), { retriable: true });
      break;
    } catch (error) {
      const retriable = (error as { retriable?: boolean }).retriable === true || /timed? ?out|TIMEOUT/i.test(String(error));
      if (!retriable || attempt >= 5) throw error;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    } finally {
      await admin.disconnect();
    }
  }
  cleanups.push(async () => {
    if (!keep) await deleteTopic(topic);
  });
  return topic;
}

/** Deletes a topic (a test's own, at its end). */
export async function deleteTopic(topic: string): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await admin.disconnect();
  }
}

/** Moves a partition's log start to `offset`, as retention would (DeleteRecords). */
export async function deleteRecordsBefore(topic: string, partition: number, offset: bigint): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs needs the leaders loaded first
    await admin.deleteTopicRecords({ topic, partitions: [{ partition, offset: offset.toString() }] });
  } finally {
    await admin.disconnect();
  }
}
