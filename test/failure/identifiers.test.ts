/**
 * Topic and group names are values, never SQL identifiers: names with dots, dashes, underscores,
 * Kafka's maximum topic length (249), and group names with quotes and semicolons flow through
 * claim, commit, status and dlq, and are stored exactly as given.
 */
import { randomBytes } from 'node:crypto';
import { defineApp, json, NonRetriableError } from '@oncely/core';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';
import { oncely } from './support.js';

let pool: ReturnType<typeof pgPool> | undefined;
const db = () => {
  pool ??= pgPool();
  return pool;
};

/** A topic name of exactly `length` characters from Kafka's alphabet (dots, dashes, underscores). */
function topicName(length: number): string {
  const head = `id.test-${randomBytes(4).toString('hex')}_x.`;
  return (head + 'a.b-c_d'.repeat(40)).slice(0, length);
}

async function createTopics(topics: string[]): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
    });
  } finally {
    await admin.disconnect();
  }
}

async function deleteTopics(topics: string[]): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
}

describe('identifiers are values', () => {
  it('topics of 249 characters with dots/dashes/underscores and groups with quotes and semicolons go through claim, commit, status and dlq', async () => {
    const long = topicName(249);
    const short = topicName(30);
    expect(long).toHaveLength(249);
    await createTopics([long, short]);
    const schema = freshSchema('ids');
    // defineApp accepts 1-200 of [A-Za-z0-9._-]; these run through real workers.
    const appGroups = [`grp.with-dots_and-dashes.${randomBytes(3).toString('hex')}`, `g-${'a.b_c-'.repeat(40)}`.slice(0, 200)];
    // The store and the admin take any text (an operator can name any group); a worker's claim and
    // commit are driven here through the store API the runtime uses.
    const freeGroups = [`grp."quoted"; drop table ${schema}.partitions; --'x'`, `g ${'é.ü_-;"'.repeat(40)}`.slice(0, 249)];
    const groups = [...appGroups, ...freeGroups];
    try {
      const producer = kafkaClient().producer();
      await producer.connect();
      for (const topic of [long, short])
        await producer.send({ topic, messages: [{ value: '{"ok":true}' }, { value: '{"ok":false}' }, { value: '{"ok":true}' }] });
      await producer.disconnect();

      for (const group of appGroups) {
        const app = defineApp<Knex.Transaction>({ group });
        for (const topic of [long, short])
          app.handle({ topic, codec: json<{ ok: boolean }>() }, async (m) => {
            if (!m.value.ok) throw new NonRetriableError('not ok');
          });
        const w = await realWorker(app, schema);
        await w.start();
        await until(
          () => w.progress().length === 2 && w.progress().every((p) => p.nextOffset === 3n),
          `group ${group} past every record`,
        );
        await w.stop();
      }
      const store = await pgStore(schema);
      for (const group of freeGroups) {
        for (const topic of [long, short]) {
          const claim = await store.claim({ group, topic, partition: 0, workerId: 'w-1', initialOffset: 0n, leaseMs: 10_000 });
          const now = new Date();
          await store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 3n, recordCount: 3 }, async () => {}, {
            deadLetters: [
              {
                record: { offset: 1n, timestamp: now.getTime(), key: null, value: Buffer.from('{"ok":false}'), headers: [] },
                error: { name: 'NonRetriableError', message: 'not ok', code: 'NON_RETRIABLE' },
                attempts: 1,
                firstFailedAt: now,
                lastFailedAt: now,
              },
            ],
          });
          await store.release({ ...claim, nextOffset: 3n });
        }
      }

      // Stored exactly as given, in every table that names them.
      const positions = await db().query<{ group_id: string; topic: string; next_offset: string }>(
        `select group_id, topic, next_offset from ${schema}.partitions order by group_id, topic`,
      );
      const expected = groups.flatMap((group_id) => [long, short].map((topic) => ({ group_id, topic, next_offset: '3' })));
      const byKey = (a: { group_id: string; topic: string }, b: { group_id: string; topic: string }) =>
        a.group_id < b.group_id ? -1 : a.group_id > b.group_id ? 1 : a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0;
      expect(positions.rows.sort(byKey)).toEqual(expected.sort(byKey));
      const logged = await db().query(`select distinct group_id, topic from ${schema}.offset_log`);
      expect(logged.rows.sort(byKey)).toEqual(expected.map(({ group_id, topic }) => ({ group_id, topic })).sort(byKey));
      const dead = await db().query(`select group_id, topic, "offset"::text from ${schema}.dead_letters`);
      expect(dead.rows.sort(byKey)).toEqual(
        expected.map(({ group_id, topic }) => ({ group_id, topic, offset: '1' })).sort(byKey),
      );

      // Through the binary: status and dlq filter by those exact names.
      const env = { ONCELY_SCHEMA: schema };
      const status = await oncely(['status', '--group', freeGroups[0]!, '--topic', long, '--json'], env);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject([
        { group: freeGroups[0], topic: long, partition: 0, nextOffset: '3', lag: '0' },
      ]);
      const list = await oncely(['dlq', 'list', '--group', freeGroups[0]!, '--topic', long, '--json'], env);
      expect(list.code, list.stderr).toBe(0);
      const listed = JSON.parse(list.stdout) as Array<{ id: string; group: string; topic: string }>;
      expect(listed.map((d) => [d.group, d.topic])).toEqual([[freeGroups[0], long]]);
      const show = await oncely(['dlq', 'show', listed[0]!.id], env);
      expect(show.stdout).toContain(`group:         ${freeGroups[0]}`);
      expect(show.stdout).toContain(`record:        ${long}/0/1`);
      const purge = await oncely(['dlq', 'purge', '--group', freeGroups[1]!, '--topic', short, '--yes', '--json'], env);
      expect(JSON.parse(purge.stdout).deleted).toBe(1);
      const audit = await db().query(`select group_id from ${schema}.admin_audit where action = 'dlq.purge'`);
      expect(audit.rows).toEqual([{ group_id: freeGroups[1] }]);
      // The schema's tables are all still there (nothing was executed from a name).
      const tables = await db().query(`select count(*)::int as n from information_schema.tables where table_schema = $1`, [
        schema,
      ]);
      expect(tables.rows[0].n).toBeGreaterThanOrEqual(6);
    } finally {
      await deleteTopics([long, short]);
    }
  });
});
