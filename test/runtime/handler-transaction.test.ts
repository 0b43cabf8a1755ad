/**
 * oncely owns each batch's transaction: it commits the handler's writes together with the offset
 * compare-and-set, and counts the batch as applied only when that commit happened. A handler that
 * ends the transaction itself (ctx.tx.commit()/rollback(), or COMMIT/ROLLBACK sent as SQL) must
 * never be reported as success: the position would not move, and every later batch would be
 * applied again (duplicates), or the offset would move without the writes (records lost).
 */
import { defineApp, OncelyError, string, type Worker } from '@oncely/core';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { createTopic, freshSchema, kafkaClient, randomName } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';

type Misuse = (tx: Knex.Transaction) => Promise<unknown>;

async function setup() {
  const topic = await createTopic(1);
  const producer = kafkaClient().producer();
  await producer.connect();
  await producer.send({ topic, messages: ['v0', 'v1', 'v2', 'v3', 'v4'].map((value) => ({ value })) });
  await producer.disconnect();
  const schema = freshSchema('tx');
  const store = await pgStore(schema);
  await store.knex.raw(`create table ${schema}.applied (grp text, "offset" bigint, v text)`);
  const rows = async (group: string) =>
    (await store.knex(`${schema}.applied`).where({ grp: group }).orderBy('offset')).map((r) => Number(r.offset));
  const app = (group: string, misuse?: Misuse) =>
    defineApp<Knex.Transaction>({ group }).handle({ topic, codec: string() }, async (m, ctx) => {
      await ctx.tx(`${schema}.applied`).insert({ grp: group, offset: m.offset.toString(), v: m.value });
      if (misuse && m.offset === 2n) await misuse(ctx.tx);
    });
  /** Runs the misbehaving handler until the worker fails; returns its error. */
  const failing = async (group: string, misuse: Misuse): Promise<OncelyError> => {
    const w: Worker<Knex.Transaction> = await realWorker(app(group, misuse), schema, { store, closeOnStop: false });
    await w.start();
    await until(() => w.state === 'failed' || w.progress()[0]?.nextOffset === 5n, 'the worker to fail', 30_000);
    expect(w.state).toBe('failed');
    expect(OncelyError.is(w.error)).toBe(true);
    return w.error as OncelyError;
  };
  /** Then the fixed handler: every record applied, the ones before too, each once. */
  const fixed = async (group: string) => {
    const w = await realWorker(app(group), schema, { store, closeOnStop: false });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 5n, 'all records with the fixed handler');
    await w.stop();
  };
  const position = async (group: string) => (await store.position({ group, topic, partition: 0 }))?.nextOffset;
  return { topic, rows, failing, fixed, position };
}

describe('a handler that ends oncely’s transaction', () => {
  it('ctx.tx.commit() and ctx.tx.rollback() are refused, even when the handler catches the refusal: the worker stops with TRANSACTION_ENDED, nothing of the batch commits, no duplicates', async () => {
    const { topic, rows, failing, fixed, position } = await setup();
    for (const end of ['commit', 'rollback'] as const) {
      const group = randomName(end);
      const swallowing: Misuse = async (tx) => {
        await tx[end]().catch(() => undefined);
      };
      const e = await failing(group, swallowing);
      expect(e.code).toBe('TRANSACTION_ENDED');
      expect(e.message).toContain(`ctx.tx.${end}()`);
      expect(e.message).toContain(`${topic}/0`);
      expect(e.message).toMatch(/remove/i);
      expect(await position(group)).toBe(0n);
      expect(await rows(group)).toEqual([]);
      await fixed(group);
      expect(await rows(group)).toEqual([0, 1, 2, 3, 4]);
    }
  });

  it('SQL that ends the transaction is refused when it starts a statement, and detected after the handler when it got through: the batch is not counted and its offset never moves on its own', async () => {
    const { topic, rows, failing, fixed, position } = await setup();
    for (const sql of ['rollback', 'COMMIT', 'select 1; rollback', 'select 1; commit']) {
      const group = randomName('sql');
      const e = await failing(group, (tx) => tx.raw(sql));
      expect(e.code).toBe('TRANSACTION_ENDED');
      expect(e.message).toContain(`${topic}/0`);
      const refused = !sql.startsWith('select');
      expect(e.message).toMatch(refused ? /refused before it ran/ : /no longer open/);
      // The compare-and-set never ran outside the transaction: the offset stayed where it was.
      expect(await position(group)).toBe(0n);
      // Refused: nothing committed. Got through: a ROLLBACK threw v0..v2 away but v3, v4 were then
      // written outside any transaction; a COMMIT made everything permanent (the message says so).
      const before = refused ? [] : sql.endsWith('rollback') ? [3, 4] : [0, 1, 2, 3, 4];
      expect(await rows(group)).toEqual(before);
      await fixed(group);
      expect(await rows(group)).toEqual([...before, 0, 1, 2, 3, 4].sort((x, y) => x - y));
    }
  });
});
