import { ConfigError } from '@oncely/core';
import { copyRows } from '@oncely/postgres-offsets';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, pgPool } from '../support/fixtures.js';
import { claimInput, newStore, rejection } from './support.js';

const schema = freshSchema('copybin');
const store = newStore(schema);
const pool = pgPool();
const range = { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 };

/** Every type binary mode writes, once each. */
const ALL = `t text, vc varchar(12), bc char(3), nm name, j json, jb jsonb, b bytea, i2 smallint, i4 integer,
  i8 bigint, f4 real, f8 double precision, ok boolean, ts timestamp, tz timestamptz, u uuid, d ${schema}.code`;
const ALL_COLUMNS = ['t', 'vc', 'bc', 'nm', 'j', 'jb', 'b', 'i2', 'i4', 'i8', 'f4', 'f8', 'ok', 'ts', 'tz', 'u', 'd'];

/** Copies rows in one batch of a fresh claim. */
async function copy(table: string, columns: string[], rows: unknown[][], format: 'text' | 'binary' = 'binary') {
  const claim = await store.claim(claimInput());
  return store.runBatch(claim, range, (tx) => copyRows(tx, `${schema}.${table}`, columns, rows, { format }));
}

/** Waits until n sessions wait for a lock on a table of this schema. */
async function waitForLockWaiters(n: number): Promise<void> {
  for (;;) {
    const r = await pool.query(
      `select count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation
        join pg_namespace s on s.oid = c.relnamespace where not l.granted and s.nspname = $1`,
      [schema],
    );
    if (r.rows[0].n >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function count(table: string): Promise<number> {
  return (await pool.query(`select count(*)::int as n from ${schema}.${table}`)).rows[0].n;
}

beforeAll(async () => {
  await store.migrate();
  await pool.query(`create domain ${schema}.code as text check (value ~ '^[A-Z]+$')`);
  for (const t of ['all_bin', 'all_text']) await pool.query(`create table ${schema}.${t} (${ALL})`);
  await pool.query(`create table ${schema}.docs (id int primary key, body jsonb, note text, raw bytea)`);
});

describe('copyRows binary', () => {
  it('writes every supported type as the text format does', async () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const rows = [
      [
        'tab\there, newline\nthere, back\\slash, é',
        'short',
        'abc',
        'a_name',
        '{"a": [1, 2]}',
        { nested: { big: 9007199254740993n }, list: [1, 'x', null] },
        Buffer.from([0, 1, 92, 255]),
        -32768,
        2147483647,
        9007199254740993n,
        1.5,
        0.1,
        true,
        at,
        at,
        '0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9',
        'ABC',
      ],
      [
        '',
        null,
        'x',
        null,
        '[]',
        '"a string"',
        Buffer.alloc(0),
        '42',
        -1,
        '-9223372036854775808',
        -0.25,
        -1e300,
        false,
        '1999-12-31T23:59:59.999999',
        '2026-06-30 12:00:00.000001+02:00',
        '0A1B2C3D4E5F60718293A4B5C6D7E8F9',
        undefined,
      ],
      ALL_COLUMNS.map(() => null),
    ];
    expect(await copy('all_bin', ALL_COLUMNS, rows)).toBe(3);
    expect(await copy('all_text', ALL_COLUMNS, rows, 'text')).toBe(3);
    // Row by row as text (json has no equality): both ways, so a missing or extra row shows too.
    const diff = await pool.query(
      `(select to_jsonb(x)::text from ${schema}.all_bin x except all select to_jsonb(y)::text from ${schema}.all_text y)
       union all
       (select to_jsonb(y)::text from ${schema}.all_text y except all select to_jsonb(x)::text from ${schema}.all_bin x)`,
    );
    expect(diff.rows).toEqual([]);
    const r = await pool.query(
      `select t, bc, j::text, jb, b, i8::text, f8, ts::text, (tz at time zone 'UTC')::text as tz, u::text
         from ${schema}.all_bin order by i2`,
    );
    expect(r.rows[0]).toEqual({
      t: 'tab\there, newline\nthere, back\\slash, é',
      bc: 'abc',
      j: '{"a": [1, 2]}',
      jb: { nested: { big: '9007199254740993' }, list: [1, 'x', null] },
      b: Buffer.from([0, 1, 92, 255]),
      i8: '9007199254740993',
      f8: 0.1,
      ts: '2026-01-02 03:04:05.678',
      tz: '2026-01-02 03:04:05.678',
      u: '0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9',
    });
    expect(r.rows[1]).toMatchObject({
      bc: 'x  ',
      jb: 'a string',
      i8: '-9223372036854775808',
      ts: '1999-12-31 23:59:59.999999',
      tz: '2026-06-30 10:00:00.000001',
    });
  });

  it('writes a Buffer into text and jsonb as its bytes', async () => {
    const body = Buffer.from('{"name": "Zoë", "n": 1}');
    expect(await copy('docs', ['id', 'body', 'note'], [[1, body, Buffer.from('naïve\ttext')]])).toBe(1);
    const r = await pool.query(`select body, note from ${schema}.docs where id = 1`);
    expect(r.rows[0]).toEqual({ body: { name: 'Zoë', n: 1 }, note: 'naïve\ttext' });
  });

  it("fails the batch with PostgreSQL's error on invalid JSON bytes, and writes nothing", async () => {
    const e = await rejection(
      copy(
        'docs',
        ['id', 'body'],
        [
          [2, Buffer.from('{"ok": 1}')],
          [3, Buffer.from('{"not json')],
        ],
      ),
    );
    expect(e).toMatchObject({ code: '22P02' });
    expect(String((e as Error).message)).toContain('json');
    expect((await pool.query(`select count(*)::int as n from ${schema}.docs where id in (2, 3)`)).rows[0].n).toBe(0);
    // And the next binary COPY of the same table and columns still works.
    expect(await copy('docs', ['id', 'body'], [[2, Buffer.from('{"ok": 1}')]])).toBe(1);
  });

  it('refuses a value its column cannot take before sending anything: the transaction stays usable', async () => {
    const claim = await store.claim(claimInput());
    const errors: unknown[] = [];
    await store.runBatch(claim, range, async (tx) => {
      const bad: unknown[][] = [
        [11, Symbol('x')],
        [1.5, null],
        [2 ** 31, null],
        ['12x', null],
        [{}, null],
      ];
      for (const row of bad)
        errors.push(await rejection(copyRows(tx, `${schema}.docs`, ['id', 'note'], [[9, 'fine'], row], { format: 'binary' })));
      await copyRows(tx, `${schema}.docs`, ['id', 'note'], [[10, 'after']], { format: 'binary' });
    });
    expect(errors.every((e) => e instanceof TypeError)).toBe(true);
    expect((errors[0] as Error).message).toContain('row 1, column "note"');
    expect((errors[1] as Error).message).toMatch(/row 1, column "id" \(integer\): 1\.5 is not an integer/);
    expect((errors[2] as Error).message).toContain('out of range');
    expect((await pool.query(`select id, note from ${schema}.docs where id in (9, 10, 11)`)).rows).toEqual([
      { id: 10, note: 'after' },
    ]);
  });

  it('refuses an unknown table or column, and a type it cannot write, with a ConfigError', async () => {
    await pool.query(`create table ${schema}.odd (id int, amount numeric, tags text[])`);
    const unknownTable = await rejection(copy('nope', ['id'], [[1]]));
    expect(unknownTable).toBeInstanceOf(ConfigError);
    expect(String((unknownTable as Error).message)).toContain(`"${schema}"."nope"`);
    const unknownColumn = await rejection(copy('odd', ['id', 'missing'], [[1, 2]]));
    expect(unknownColumn).toBeInstanceOf(ConfigError);
    expect(String((unknownColumn as Error).message)).toContain('"missing"');
    expect(await rejection(copy('odd', ['id', 'id'], [[1, 2]]))).toBeInstanceOf(ConfigError);
    const unsupported = await rejection(copy('odd', ['id', 'amount', 'tags'], [[1, 2, null]]));
    expect(unsupported).toBeInstanceOf(ConfigError);
    expect(String((unsupported as Error).message)).toContain('"amount" (numeric), "tags" (text[])');
    expect(String((unsupported as Error).message)).toContain("format: 'text'");
    expect(String((unsupported as Error).message)).toContain('double precision');
    expect(await copy('odd', ['id', 'amount', 'tags'], [[1, '2.50', '{a,b}']], 'text')).toBe(1);
  });

  it('reads the types again after alter table changes one', async () => {
    await pool.query(`create table ${schema}.changing (id int, x bigint)`);
    expect(await copy('changing', ['id', 'x'], [[1, 7]])).toBe(1);
    // 8 bytes of bigint read as a double would be accepted, and wrong: the check before the COPY
    // sees the new type, abandons the COPY, and the retry encodes a double.
    await pool.query(`alter table ${schema}.changing alter column x type double precision`);
    const e = await rejection(copy('changing', ['id', 'x'], [[2, 3]]));
    expect(String((e as Error).message)).toContain('column types');
    expect(await count('changing')).toBe(1);
    expect(await copy('changing', ['id', 'x'], [[2, 3]])).toBe(1);
    // A value the cached types refuse (2.5 for a bigint) is tried against the table's types now.
    await pool.query(`alter table ${schema}.changing alter column x type bigint`);
    expect(String(((await rejection(copy('changing', ['id', 'x'], [[3, 4]]))) as Error).message)).toContain('column types');
    expect(await copy('changing', ['id', 'x'], [[3, 4]])).toBe(1);
    await pool.query(`alter table ${schema}.changing alter column x type double precision`);
    expect(await copy('changing', ['id', 'x'], [[4, 2.5]])).toBe(1);
    expect((await pool.query(`select id, x from ${schema}.changing order by id`)).rows).toEqual([
      { id: 1, x: 7 },
      { id: 2, x: 3 },
      { id: 3, x: 4 },
      { id: 4, x: 2.5 },
    ]);
    await pool.query(`alter table ${schema}.changing alter column x type numeric`);
    expect(String(((await rejection(copy('changing', ['id', 'x'], [[3, 1]]))) as Error).message)).toContain('column types');
    expect(await rejection(copy('changing', ['id', 'x'], [[3, 1]]))).toBeInstanceOf(ConfigError);
  });

  it('sees an alter table that was waiting for the lock when the COPY was sent', async () => {
    await pool.query(`create table ${schema}.queued (id int, x bigint)`);
    expect(await copy('queued', ['id', 'x'], [[1, 1]])).toBe(1);
    const holder = await pool.connect();
    const alterer = await pool.connect();
    try {
      await holder.query(`begin; lock table ${schema}.queued in row exclusive mode`);
      const altered = alterer.query(`alter table ${schema}.queued alter column x type double precision`);
      await waitForLockWaiters(1);
      const copied = rejection(copy('queued', ['id', 'x'], [[2, 2]]));
      await waitForLockWaiters(2);
      await holder.query('commit');
      await altered;
      // The COPY went after the alter: it must not have written a bigint's bytes as a double.
      expect(String(((await copied) as Error).message)).toContain('column types');
    } finally {
      holder.release();
      alterer.release();
    }
    expect(await copy('queued', ['id', 'x'], [[2, 2]])).toBe(1);
    expect((await pool.query(`select id, x from ${schema}.queued order by id`)).rows).toEqual([
      { id: 1, x: 1 },
      { id: 2, x: 2 },
    ]);
  });

  it('rolls back with the batch when the handler fails after the COPY', async () => {
    const claim = await store.claim(claimInput());
    const boom = new Error('after copy');
    const e = await rejection(
      store.runBatch(claim, range, async (tx) => {
        await copyRows(tx, `${schema}.docs`, ['id', 'note'], [[5000, 'x']], { format: 'binary' });
        throw boom;
      }),
    );
    expect(e).toBe(boom);
    expect((await pool.query(`select count(*)::int as n from ${schema}.docs where id = 5000`)).rows[0].n).toBe(0);
  });

  it('streams a batch larger than one chunk', async () => {
    await pool.query(`create table ${schema}.many (id int primary key, body jsonb)`);
    const big = Buffer.from(JSON.stringify({ pad: 'x'.repeat(100_000) }));
    const rows = Array.from({ length: 5000 }, (_, i) => [i, i === 10 ? big : Buffer.from(`{"i": ${i}}`)]);
    expect(await copy('many', ['id', 'body'], rows)).toBe(5000);
    const r = await pool.query(
      `select count(*)::int as n, sum((body->>'i')::int)::int as s, max(length(body->>'pad'))::int as pad from ${schema}.many`,
    );
    expect(r.rows[0]).toEqual({ n: 5000, s: (4999 * 5000) / 2 - 10, pad: 100_000 });
  });
});
