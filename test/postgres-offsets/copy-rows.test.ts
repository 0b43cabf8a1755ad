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
});
