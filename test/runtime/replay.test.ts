/**
 * `ctx.isReplay` means what it says: this group applied the record before (an operator rewound
 * over it). Records a group skipped (it started at the latest offset, a reset to latest jumped
 * over them) or dead-lettered were never applied, so reading them after a rewind is no replay: a
 * handler that suppresses side effects on replays must still send theirs.
 */
import { defineApp, KafkajsPartitionReader, NonRetriableError, silentLogger, string } from '@oncely/core';
import { DeadLetters, OffsetsAdmin } from '@oncely/postgres-offsets';
import type { Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { brokers, createTopic, freshSchema, kafkaClient, randomName } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';

const reader = new KafkajsPartitionReader({ brokers: brokers(), logger: silentLogger });
afterAll(() => reader.close());

async function produce(topic: string, values: string[]): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  await producer.send({ topic, messages: values.map((value) => ({ value, partition: 0 })) });
  await producer.disconnect();
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `v${from + i}`);

describe('ctx.isReplay', () => {
  it('is true only for records the group applied before: not for records it skipped (latest, reset) or dead-lettered', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('replay');
    const group = randomName('replay');
    const store = await pgStore(schema);
    const admin = new OffsetsAdmin({ store, kafka: reader, actor: 'test' });
    // What committed, in order: a handler attempt that rolled back leaves no row.
    await store.knex.raw(`create table ${schema}.seen (id bigserial primary key, pass int, v text, replay boolean)`);
    let passNo = 1;
    const seen = async (): Promise<Array<[string, boolean]>> =>
      (await store.knex(`${schema}.seen`).where({ pass: passNo }).orderBy('id')).map((r) => [r.v, r.replay]);
    const failOnce = new Set(['v6', 'v13']);
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: string() }, async (m, ctx) => {
      if (failOnce.delete(m.value)) throw new NonRetriableError('fails the first time it is seen');
      await ctx.tx(`${schema}.seen`).insert({ pass: passNo, v: m.value, replay: ctx.isReplay });
    });
    const pass = async (to: bigint): Promise<Array<[string, boolean]>> => {
      passNo++;
      const w = await realWorker(app, schema, { store, closeOnStop: false, initialOffset: 'latest' });
      await w.start();
      await until(() => w.progress()[0]?.nextOffset === to, `position ${to}`);
      await w.stop();
      return seen();
    };
    const expected = (replays: Record<string, boolean>, values: string[]) =>
      values.filter((v) => v in replays).map((v) => [v, replays[v]]);

    await produce(topic, range(0, 5));
    // 1. A new group starting at 'latest' (5): v0..v4 are never applied; v6 is dead-lettered.
    const first = await realWorker(app, schema, { store, closeOnStop: false, initialOffset: 'latest' });
    await first.start();
    expect(first.progress()[0]?.nextOffset).toBe(5n);
    await produce(topic, range(5, 10));
    await until(() => first.progress()[0]?.nextOffset === 10n, 'v5..v9');
    await first.stop();
    expect(await seen()).toEqual(['v5', 'v7', 'v8', 'v9'].map((v) => [v, false]));

    // 2. Rewind to 0: only v5, v7, v8, v9 were applied before.
    await admin.executeReset({ group, to: { kind: 'offset', offset: 0n } });
    const all = range(0, 10);
    const applied = Object.fromEntries(all.map((v) => [v, ['v5', 'v7', 'v8', 'v9'].includes(v)]));
    expect(await pass(10n)).toEqual(expected(applied, all));

    // 3. v10 and v11 are skipped by a reset to latest; v12 is applied.
    await produce(topic, ['v10', 'v11']);
    await admin.executeReset({ group, to: { kind: 'latest' } });
    await produce(topic, ['v12']);
    expect(await pass(13n)).toEqual([['v12', false]]);

    // 4. Rewind to 0 again: v0..v9 and v12 were applied by now, v10 and v11 never.
    await admin.executeReset({ group, to: { kind: 'offset', offset: 0n } });
    const every = range(0, 13);
    expect(await pass(13n)).toEqual(every.map((v) => [v, v !== 'v10' && v !== 'v11']));

    // 5. v13 is dead-lettered. Requeued, it is applied for the first time, while v6 (dead-lettered
    // in 1, applied after the rewind in 2) is a replay; after a rewind v13 is a replay too.
    await produce(topic, ['v13']);
    expect(await pass(14n)).toEqual([]);
    passNo++;
    const requeued = await new DeadLetters({ store, actor: 'test' }).requeue(app, { group });
    expect(requeued.map((r) => [r.offset, r.status])).toEqual([
      [6n, 'applied'],
      [13n, 'applied'],
    ]);
    expect(await seen()).toEqual([
      ['v6', true],
      ['v13', false],
    ]);
    await admin.executeReset({ group, to: { kind: 'offset', offset: 13n } });
    expect(await pass(14n)).toEqual([['v13', true]]);
  });
});
