import { defineApp, FencedError, json } from '@oncely/core';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { createTopic, freshSchema, kafkaClient, pgPool, randomName } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';

interface Item {
  p: number;
  i: number;
}

async function produce(topic: string, partitions: number, perPartition: number, from = 0) {
  const producer = kafkaClient().producer();
  await producer.connect();
  for (let p = 0; p < partitions; p++) {
    await producer.send({
      topic,
      messages: Array.from({ length: perPartition }, (_, j) => ({ partition: p, value: JSON.stringify({ p, i: from + j }) })),
    });
  }
  await producer.disconnect();
}

/** An app that appends every record to a table in the transaction it is given. */
function tableApp(topic: string, group: string, table: string, delayMs = 0) {
  return defineApp<Knex.Transaction>({ group }).handleBatch({ topic, codec: json<Item>() }, async (batch, ctx) => {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    await ctx
      .tx(table)
      .insert(batch.messages.map((m) => ({ partition: m.partition, offset: m.offset.toString(), i: m.value.i })));
  });
}

async function makeTable(schema: string): Promise<string> {
  const pool = pgPool();
  await pool.query(`create schema if not exists ${schema}`);
  await pool.query(`create table ${schema}.seen (id bigserial primary key, partition int, "offset" bigint, i int)`);
  return `${schema}.seen`;
}

async function appliedRows(table: string) {
  const r = await pgPool().query<{ partition: number; offset: string; i: number }>(
    `select partition, "offset", i from ${table} order by id`,
  );
  return r.rows;
}

describe('exactly-once runtime against Kafka and PostgreSQL', () => {
  it('applies N records across partitions exactly once, in order per partition', async () => {
    const topic = await createTopic(3);
    const schema = freshSchema();
    const table = await makeTable(schema);
    await produce(topic, 3, 400);
    const worker = await realWorker(tableApp(topic, randomName('g'), table), schema, { batchMaxRecords: 64 });
    await worker.start();
    await until(() => worker.progress().every((p) => p.nextOffset === 400n), 'all partitions at 400');
    await worker.stop();
    const rows = await appliedRows(table);
    expect(rows).toHaveLength(1200);
    for (let p = 0; p < 3; p++) {
      expect(rows.filter((r) => r.partition === p).map((r) => r.i)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    }
    expect(worker.state).toBe('stopped');
  });

  it('resumes after a clean stop at the stored offset: nothing re-applied, nothing skipped', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema();
    const table = await makeTable(schema);
    const group = randomName('g');
    await produce(topic, 2, 300);
    // Slow enough that the stop lands mid-stream.
    const first = await realWorker(tableApp(topic, group, table, 20), schema, { batchMaxRecords: 10 });
    await first.start();
    await until(() => first.progress().some((p) => p.nextOffset >= 50n), 'some progress');
    await first.stop();
    const stoppedAt = first.progress().map((p) => p.nextOffset);
    expect(stoppedAt.some((o) => o < 300n)).toBe(true); // really stopped mid-stream
    await produce(topic, 2, 100, 300);
    const second = await realWorker(tableApp(topic, group, table), schema, { batchMaxRecords: 10 });
    await second.start();
    await until(() => second.progress().every((p) => p.nextOffset === 400n), 'caught up');
    await second.stop();
    const rows = await appliedRows(table);
    for (let p = 0; p < 2; p++) {
      expect(rows.filter((r) => r.partition === p).map((r) => r.i)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    }
  });

  it('fences the first of two workers claiming one static partition: FencedError, and nothing written after', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema();
    const table = await makeTable(schema);
    const group = randomName('g');
    const store = await pgStore(schema);
    // A commits once, then B takes over; A's next commit (a stale epoch) must be rejected.
    const claimA = await store.claim({ group, topic, partition: 0, workerId: 'A', initialOffset: 0n, leaseMs: 30_000 });
    await store.runBatch(claimA, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, (tx) =>
      tx(table).insert({ partition: 0, offset: 0, i: 0 }),
    );
    const claimB = await store.claim({
      group,
      topic,
      partition: 0,
      workerId: 'B',
      initialOffset: 0n,
      leaseMs: 30_000,
      force: true,
    });
    expect(claimB.epoch).toBe(claimA.epoch + 1n);
    const attempt = store.runBatch({ ...claimA, nextOffset: 1n }, { fetchedFrom: 1n, nextOffset: 2n, recordCount: 1 }, (tx) =>
      tx(table).insert({ partition: 0, offset: 1, i: 1 }),
    );
    await expect(attempt).rejects.toBeInstanceOf(FencedError);
    expect((await appliedRows(table)).map((r) => r.i)).toEqual([0]);

    // The same through two running workers: the first drops the partition when the second claims it.
    const t2 = await createTopic(1);
    await produce(t2, 1, 5);
    const fenced: string[] = [];
    let gate!: () => void;
    const held = new Promise<void>((r) => {
      gate = r;
    });
    let aInside = false;
    const appA = defineApp<Knex.Transaction>({ group }).handle({ topic: t2, codec: json<Item>() }, async (m, ctx) => {
      await ctx.tx(table).insert({ partition: 100, offset: m.offset.toString(), i: m.value.i });
      if (m.value.i === 1) {
        aInside = true;
        await held;
      }
    });
    const a = await realWorker(appA, schema, {
      workerId: 'wa',
      batchMaxRecords: 1,
    });
    a.on('fenced', (f) => {
      fenced.push(f.action);
    });
    await a.start();
    await until(() => aInside, 'A inside its second transaction');
    const appB = defineApp<Knex.Transaction>({ group }).handle({ topic: t2, codec: json<Item>() }, async (m, ctx) => {
      await ctx.tx(table).insert({ partition: 200, offset: m.offset.toString(), i: m.value.i });
    });
    // A live holder is only ever taken from deliberately: B takes over with force.
    const b = await realWorker(appB, schema, { workerId: 'wb', force: true });
    const bStarted = b.start();
    await new Promise((r) => setTimeout(r, 300));
    gate();
    await bStarted;
    await until(() => fenced.length > 0, 'A fenced');
    await until(() => b.progress()[0]?.nextOffset === 5n, 'B caught up');
    await Promise.all([a.stop(), b.stop()]);
    const rows = await appliedRows(table);
    expect(fenced).toEqual(['dropped']);
    // Whether A's in-flight batch committed depends on who took the row lock first; either way
    // every offset is applied once: A's commits are a prefix, B applied the rest, nothing twice.
    const byA = rows.filter((r) => r.partition === 100).map((r) => r.offset);
    const byB = rows.filter((r) => r.partition === 200).map((r) => r.offset);
    expect([...byA, ...byB]).toEqual(['0', '1', '2', '3', '4']);
    expect(byA.length).toBeGreaterThanOrEqual(1);
    expect(byB.length).toBeGreaterThanOrEqual(3);
  });

  it('re-claims after a live rewind (epoch bumped, owner kept) and re-applies from the new position', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema();
    const table = await makeTable(schema);
    const group = randomName('g');
    await produce(topic, 1, 20);
    const fenced: string[] = [];
    const worker = await realWorker(tableApp(topic, group, table), schema, {
      leaseMs: 3000,
    });
    worker.on('fenced', (f) => {
      fenced.push(f.action);
    });
    await worker.start();
    await until(() => worker.progress()[0]?.nextOffset === 20n, 'caught up');
    // What an operator's rewind does to the row: new position, epoch + 1, owner unchanged.
    await pgPool().query(`update ${schema}.partitions set next_offset = 15, epoch = epoch + 1 where group_id = $1`, [group]);
    await until(async () => (await appliedRows(table)).length === 25, 'offsets 15..19 applied again');
    await worker.stop();
    expect(fenced).toEqual(['reclaimed']);
    expect((await appliedRows(table)).slice(20).map((r) => r.i)).toEqual([15, 16, 17, 18, 19]);
  });
});
