import { defineApp, OffsetOutOfRangeError, string } from '@oncely/core';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { createTopic, deleteRecordsBefore, freshSchema, kafkaClient, pgPool, randomName } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';

async function seenTable(schema: string): Promise<string> {
  const pool = pgPool();
  await pool.query(`create schema if not exists ${schema}`);
  await pool.query(`create table ${schema}.seen (id bigserial primary key, "offset" bigint, v text)`);
  return `${schema}.seen`;
}

const recordApp = (topic: string, group: string, table: string) =>
  defineApp<Knex.Transaction>({ group }).handle({ topic, codec: string() }, async (m, ctx) => {
    await ctx.tx(table).insert({ offset: m.offset.toString(), v: m.value });
  });

async function highWatermark(topic: string): Promise<bigint> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    return BigInt((await admin.fetchTopicOffsets(topic))[0]!.high);
  } finally {
    await admin.disconnect();
  }
}

describe('log edges against the real broker', () => {
  it('never applies records of aborted transactions and moves past control records until lag is 0', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema();
    const table = await seenTable(schema);
    const kafka = kafkaClient();
    const producer = kafka.producer({ transactionalId: randomName('tx'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const send = async (values: string[], commit: boolean) => {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: values.map((value) => ({ value })) });
      await (commit ? tx.commit() : tx.abort());
    };
    await send(['c1', 'c2'], true);
    await send(['a1', 'a2', 'a3'], false);
    await send(['c3'], true);
    await send(['a4'], false);
    await producer.disconnect();
    const hw = await highWatermark(topic);
    const worker = await realWorker(recordApp(topic, randomName('g'), table), schema);
    await worker.start();
    await until(() => worker.progress()[0]?.nextOffset === hw, `position at the high watermark ${hw}`);
    await worker.stop();
    const rows = (await pgPool().query<{ v: string }>(`select v from ${table} order by id`)).rows;
    expect(rows.map((r) => r.v)).toEqual(['c1', 'c2', 'c3']);
    expect(hw).toBeGreaterThan(4n); // 4 committed/aborted markers plus 7 records: the gaps are real
  });

  it('stops with a clear error when retention deleted the stored offset, or moves on and counts it when asked', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema();
    const table = await seenTable(schema);
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })) });
    await producer.disconnect();
    const group = randomName('g');
    const store = await pgStore(schema);
    // The group last stopped at offset 2; then retention removed everything before offset 6.
    const claim = await store.claim({ group, topic, partition: 0, workerId: 'earlier', initialOffset: 2n, leaseMs: 1000 });
    await store.release(claim);
    await deleteRecordsBefore(topic, 0, 6n);

    const failing = await realWorker(recordApp(topic, group, table), schema, { closeOnStop: false, store });
    await failing.start();
    await expect(failing.done).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect(failing.error?.message).toMatch(/Offset 2 of .+\/0 is out of range \(the log now spans 6\.\.10\)/);
    expect((await pgPool().query(`select count(*)::int as n from ${table}`)).rows[0].n).toBe(0);

    const moves: Array<[bigint, bigint]> = [];
    const moving = await realWorker(recordApp(topic, group, table), schema, {
      closeOnStop: false,
      store,
      offsetOutOfRange: 'earliest',
    });
    moving.on('out-of-range', (m) => {
      moves.push([m.from, m.to]);
    });
    await moving.start();
    await until(() => moving.progress()[0]?.nextOffset === 10n, 'caught up after the move');
    await moving.stop();
    expect(moves).toEqual([[2n, 6n]]);
    const rows = (await pgPool().query<{ v: string }>(`select v from ${table} order by id`)).rows;
    expect(rows.map((r) => r.v)).toEqual(['v6', 'v7', 'v8', 'v9']);
  });
});
