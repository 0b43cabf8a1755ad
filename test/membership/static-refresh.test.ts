/**
 * Static membership follows the topic's partitions without a restart: partitions added to a topic
 * are claimed and applied within a partition refresh, and a topic that disappears stops its
 * runners with a clear line and releases their claims. Real broker, real database, the binary.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeProjectionTables, producePayments } from '../cli/support.js';
import { startOncely } from '../support/cli.js';
import { freshSchema, kafkaClient, pgPool, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';

const V1 = resolve(import.meta.dirname, '../cli/fixtures/projection-v1.ts');

let pool: ReturnType<typeof pgPool> | undefined;
/** One pool for the file: pgPool() opens a new one per call. */
const db = () => {
  pool ??= pgPool();
  return pool;
};

async function rows(schema: string, group: string) {
  return (
    await db().query<{ partition: number; next_offset: string; owner: string | null }>(
      `select partition, next_offset::text, owner from ${schema}.partitions where group_id = $1 order by partition`,
      [group],
    )
  ).rows;
}

/** rows(), or none while the worker has not migrated the schema yet. */
const rowsSoFar = (schema: string, group: string) => rows(schema, group).catch(() => []);

describe('static membership and a topic that changes (real broker)', () => {
  it('takes partitions added to the topic within a refresh, and stops and releases a deleted topic’s partitions', async () => {
    // Not createTopic(): this test deletes the topic itself, so no cleanup should try again.
    const topic = randomName('topic');
    const setupAdmin = kafkaClient().admin();
    await setupAdmin.connect();
    try {
      await setupAdmin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] });
    } finally {
      await setupAdmin.disconnect();
    }
    const schema = freshSchema('static_refresh');
    const group = randomName('g');
    await makeProjectionTables(schema);
    await producePayments(topic, 2, 5);
    const run = startOncely(['run', V1, '--schema', schema, '--membership', 'static', '--partition-refresh', '1000'], {
      APP_SCHEMA: schema,
      APP_TOPIC: topic,
      APP_GROUP: group,
      ONCELY_LOG_LEVEL: 'info',
    });
    let stderr = '';
    run.child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await until(
      async () => (await rowsSoFar(schema, group)).filter((r) => r.next_offset === '5').length === 2,
      'both partitions applied',
    );

    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] });
      await producePayments(topic, 4, 3, 100);
      // Partitions 0 and 1 get 3 more (8), the new 2 and 3 get their first 3.
      await until(async () => {
        const r = await rows(schema, group);
        return r.length === 4 && r.every((x) => x.next_offset === (x.partition < 2 ? '8' : '3'));
      }, 'the new partitions claimed and applied without a restart');
      expect(stderr).toMatch(new RegExp(`topic ${topic} has 4 partitions now \\(was 2\\)`));
      expect((await rows(schema, group)).every((r) => r.owner !== null)).toBe(true);

      await admin.deleteTopics({ topics: [topic] });
    } finally {
      await admin.disconnect();
    }
    await until(() => stderr.includes(`topic ${topic} no longer exists: its partitions are stopped and released`), 'the line');
    await until(async () => (await rows(schema, group)).every((r) => r.owner === null), 'every claim released');
    expect(run.child.exitCode).toBeNull(); // the worker goes on (another topic of the app would still run)
    run.child.kill('SIGTERM');
    const r = await run.result;
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
  });
});
