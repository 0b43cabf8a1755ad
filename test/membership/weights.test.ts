/**
 * Weighted elastic membership with the real broker and database: two in-process workers of
 * weights 1 and 3 share a topic of 8 partitions as 2 and 6. The weights travel with the
 * heartbeats (the workers table), so both compute the same target; the database's owners (live
 * leases) and the workers' own accounts must agree, and every record produced is applied once.
 */
import { defineApp, json } from '@oncely/core';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { createTopic, freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';

const pool = pgPool();

describe('weighted elastic membership', () => {
  it('two workers of weights 1 and 3 over 8 partitions end with 2 and 6', { timeout: 120_000 }, async () => {
    const topic = await createTopic(8);
    const schema = freshSchema('weights');
    const group = `weights-${topic}`;
    const store = await pgStore(schema);
    await pool.query(`create table ${schema}.applied (p int, o bigint, primary key (p, o))`);
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json() }, async (m, ctx) => {
      await ctx.tx.raw(`insert into ${schema}.applied values (?, ?)`, [m.partition, m.offset.toString()]);
    });
    const timings = { leaseMs: 3_000, heartbeatIntervalMs: 500, sessionTimeoutMs: 3_000 };
    const light = await realWorker(app, schema, { store, workerId: 'light', weight: 1, ...timings });
    const heavy = await realWorker(app, schema, { store, workerId: 'heavy', weight: 3, ...timings });
    await Promise.all([light.start(), heavy.start()]);
    const owners = async () =>
      (
        await pool.query<{ owner: string; n: number }>(
          `select owner, count(*)::int as n from ${schema}.partitions
            where group_id = $1 and lease_expires_at > now() group by owner order by owner`,
          [group],
        )
      ).rows;
    await until(
      async () =>
        light.progress().length === 2 &&
        heavy.progress().length === 6 &&
        JSON.stringify(await owners()) ===
          JSON.stringify([
            { owner: 'heavy', n: 6 },
            { owner: 'light', n: 2 },
          ]),
      'light 2, heavy 6',
      60_000,
    );
    const mine = (w: typeof light) => w.progress().map((p) => p.partition);
    expect(new Set([...mine(light), ...mine(heavy)]).size).toBe(8);
    const { rows: beats } = await pool.query(
      `select worker_id, weight from ${schema}.workers where group_id = $1 order by worker_id`,
      [group],
    );
    expect(beats).toEqual([
      { worker_id: 'heavy', weight: 3 },
      { worker_id: 'light', weight: 1 },
    ]);
    // Records flow on both: one per partition, each applied once.
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 8 }, (_, partition) => ({ partition, value: '{}' })),
    });
    await producer.disconnect();
    const applied = async () => (await pool.query(`select count(*)::int as n from ${schema}.applied`)).rows[0].n as number;
    await until(async () => (await applied()) === 8, 'all 8 records applied', 60_000);
    await Promise.all([light.stop(), heavy.stop()]);
    expect(await applied()).toBe(8);
  });
});
