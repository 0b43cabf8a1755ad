import { ConfigError } from '@oncely/core';
import { insertRows } from '@oncely/postgres-offsets';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, pgPool } from '../support/fixtures.js';
import { claimInput, newStore, rejection } from './support.js';

const schema = freshSchema('bulk');
const pool = pgPool();
const store = newStore(schema);

beforeAll(async () => {
  await store.migrate();
  await pool.query(
    `create table ${schema}.events (
       id bigint primary key,
       name text not null,
       body bytea,
       attrs jsonb,
       at timestamptz,
       hits int not null default 0
     )`,
  );
});

/** Counts the statements knex sends while `fn` runs (the 'query' event fires once per statement). */
async function statementsDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (q: { sql: string }) => seen.push(q.sql);
  store.knex.on('query', listener);
  try {
    await fn();
  } finally {
    store.knex.off('query', listener);
  }
  return seen;
}

describe('insertRows', () => {
  it('inserts N rows in one statement inside the batch transaction, preserving every type', async () => {
    const claim = await store.claim(claimInput());
    const rows = Array.from({ length: 500 }, (_, i) => ({
      id: BigInt(i) + 9_007_199_254_740_000n,
      name: `it's "row" ${i}; drop table x`,
      body: Buffer.from([i % 256, 0, 255]),
      attrs: { i, tags: ['a', 'b'] },
      at: new Date(Date.UTC(2024, 0, 1, 0, 0, i % 60)),
    }));
    let inserted = 0;
    const statements = await statementsDuring(() =>
      store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 500n, recordCount: 500 }, async (tx) => {
        inserted = await insertRows(tx, `${schema}.events`, rows);
      }),
    );
    expect(inserted).toBe(500);
    expect(statements.filter((s) => /^insert into "/.test(s))).toHaveLength(1);
    const { rows: stored } = await pool.query(
      `select id::text, name, body, attrs, at from ${schema}.events where id >= 9007199254740000 order by id`,
    );
    expect(stored).toHaveLength(500);
    expect(stored[7]).toEqual({
      id: '9007199254740007',
      name: `it's "row" 7; drop table x`,
      body: Buffer.from([7, 0, 255]),
      attrs: { i: 7, tags: ['a', 'b'] },
      at: new Date(Date.UTC(2024, 0, 1, 0, 0, 7)),
    });
  });

  it('skips or merges conflicting rows when asked', async () => {
    await insertRows(store.knex, `${schema}.events`, [
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    const ignored = await insertRows(
      store.knex,
      `${schema}.events`,
      [
        { id: 2, name: 'two again' },
        { id: 3, name: 'three' },
      ],
      { onConflict: { columns: ['id'], action: 'ignore' } },
    );
    expect(ignored).toBe(1);
    const merged = await insertRows(store.knex, `${schema}.events`, [{ id: 1, name: 'uno', hits: 5 }], {
      onConflict: { columns: ['id'], action: { merge: ['name', 'hits'] } },
    });
    expect(merged).toBe(1);
    const { rows } = await pool.query(`select id::int, name, hits from ${schema}.events where id < 10 order by id`);
    expect(rows).toEqual([
      { id: 1, name: 'uno', hits: 5 },
      { id: 2, name: 'two', hits: 0 },
      { id: 3, name: 'three', hits: 0 },
    ]);
    expect(await insertRows(store.knex, `${schema}.events`, [])).toBe(0);
  });

  it('refuses table and column names that are not plain identifiers', async () => {
    const badTable = await rejection(insertRows(store.knex, `events; drop table ${schema}.events`, [{ id: 1 }]));
    expect(badTable).toBeInstanceOf(ConfigError);
    const badColumn = await rejection(insertRows(store.knex, `${schema}.events`, [{ 'id"); drop table x; --': 1 }]));
    expect(badColumn).toBeInstanceOf(ConfigError);
    const { rows } = await pool.query(`select count(*)::int as n from ${schema}.events`);
    expect(rows[0].n).toBeGreaterThan(0);
  });
});
