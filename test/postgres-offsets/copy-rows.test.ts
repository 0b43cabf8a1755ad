import { ConfigError } from '@oncely/core';
import { copyRows } from '@oncely/postgres-offsets';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, pgPool } from '../support/fixtures.js';
import { claimInput, newStore, rejection } from './support.js';

const schema = freshSchema('copy');
const store = newStore(schema);
const pool = pgPool();

beforeAll(async () => {
  await store.migrate();
  await pool.query(`create table ${schema}.events (id bigint primary key, note text, body jsonb, raw bytea, at timestamptz)`);
});

describe('copyRows', () => {
  it('writes rows with COPY inside the batch transaction, committed with the offset', async () => {
    const claim = await store.claim(claimInput());
    const at = new Date('2026-01-02T03:04:05.000Z');
    const rows = [
      [1n, 'tab\there, newline\nthere, back\\slash', { a: [1, 2], big: 9007199254740993n }, Buffer.from([0, 1, 255]), at],
      [2, null, null, null, null],
      ...Array.from({ length: 998 }, (_, i) => [i + 3, `n${i}`, { i }, null, at]),
    ];
    const n = await store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1000n, recordCount: 1000 }, (tx) =>
      copyRows(tx, `${schema}.events`, ['id', 'note', 'body', 'raw', 'at'], rows),
    );
    expect(n).toBe(1000);
    const r = await pool.query(`select id::int, note, body, raw, at from ${schema}.events where id <= 2 order by id`);
    expect(r.rows[0]).toEqual({
      id: 1,
      note: 'tab\there, newline\nthere, back\\slash',
      body: { a: [1, 2], big: '9007199254740993' },
      raw: Buffer.from([0, 1, 255]),
      at,
    });
    expect(r.rows[1]).toEqual({ id: 2, note: null, body: null, raw: null, at: null });
    expect((await pool.query(`select count(*)::int as n from ${schema}.events`)).rows[0].n).toBe(1000);
  });

  it('rolls back with the batch when the handler fails after the COPY', async () => {
    const claim = await store.claim(claimInput());
    const boom = new Error('after copy');
    const e = await rejection(
      store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
        await copyRows(tx, `${schema}.events`, ['id', 'note'], [[5000, 'x']]);
        throw boom;
      }),
    );
    expect(e).toBe(boom);
    expect((await pool.query(`select count(*)::int as n from ${schema}.events where id = 5000`)).rows[0].n).toBe(0);
  });

  it('refuses bad identifiers and ragged rows before sending anything', async () => {
    const claim = await store.claim(claimInput());
    const range = { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 };
    expect(
      await rejection(store.runBatch(claim, range, (tx) => copyRows(tx, 'events; drop table x', ['id'], [[1]]))),
    ).toBeInstanceOf(ConfigError);
    expect(
      await rejection(store.runBatch(claim, range, (tx) => copyRows(tx, `${schema}.events`, ['id', 'note'], [[1]]))),
    ).toBeInstanceOf(ConfigError);
  });

  it("fails the batch with PostgreSQL's error when a row is refused while the COPY is still being written", async () => {
    // A duplicate key in the first rows of a batch of many 64 KiB chunks: PostgreSQL refuses it
    // while copyRows is still writing (waiting for the stream to drain). The batch must fail with
    // that error, the connection stay usable for the rollback, and no rejection go unhandled.
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const claim = await store.claim(claimInput());
      const pad = 'x'.repeat(1000);
      const rows = [[9000, 'dup'], [9000, 'dup'], ...Array.from({ length: 20_000 }, (_, i) => [9001 + i, pad])];
      const e = await rejection(
        store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, (tx) =>
          copyRows(tx, `${schema}.events`, ['id', 'note'], rows),
        ),
      );
      expect((e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code).toBe('23505');
      await new Promise((r) => setTimeout(r, 200));
      expect(unhandled).toEqual([]);
      expect((await pool.query(`select count(*)::int as n from ${schema}.events where id >= 9000`)).rows[0].n).toBe(0);
      // The store goes on: the next batch of the same claim commits.
      const again = await store.claim(claimInput());
      await store.runBatch(again, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, (tx) =>
        copyRows(tx, `${schema}.events`, ['id', 'note'], [[8999, 'ok']]),
      );
      expect((await pool.query(`select count(*)::int as n from ${schema}.events where id = 8999`)).rows[0].n).toBe(1);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('ends the COPY with CopyFail when a value cannot be written part-way, leaving the transaction to roll back', async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const pad = 'y'.repeat(1000);
    const rows: unknown[][] = Array.from({ length: 5_000 }, (_, i) => [20_000 + i, pad, null]);
    rows[4_000] = [24_000, pad, circular]; // after many chunks were sent
    const claim = await store.claim(claimInput());
    const e = await rejection(
      store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, (tx) =>
        copyRows(tx, `${schema}.events`, ['id', 'note', 'body'], rows),
      ),
    );
    expect(e).toBeInstanceOf(TypeError);
    expect((await pool.query(`select count(*)::int as n from ${schema}.events where id >= 20000`)).rows[0].n).toBe(0);
    const again = await store.claim(claimInput());
    await store.runBatch(again, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, (tx) =>
      copyRows(tx, `${schema}.events`, ['id', 'note'], [[19_999, 'ok']]),
    );
    expect((await pool.query(`select count(*)::int as n from ${schema}.events where id = 19999`)).rows[0].n).toBe(1);
  });
});
