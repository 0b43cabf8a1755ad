import { once } from 'node:events';
import { ConfigError } from '@oncely/core';
import type { Knex } from 'knex';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdentifier } from '../identifiers.js';
import { BINARY_KINDS, type BinaryColumn, bigintJson, encodeBinaryRows, SUPPORTED_TYPES } from './copy-binary.js';

/** The four characters COPY's text format escapes. */
const SPECIAL = /[\\\t\n\r]/;

function escapeText(s: string): string {
  return SPECIAL.test(s) ? s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r') : s;
}

/**
 * One value in COPY's text format: \N for null, backslash escapes, bytea as \\x hex. Strings and
 * numbers, the common values, are told apart first by typeof; a number or bigint needs no escaping.
 */
function field(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return escapeText(v);
    case 'number':
    case 'bigint':
      return String(v);
    case 'undefined':
      return '\\N';
  }
  if (v === null) return '\\N';
  if (Buffer.isBuffer(v)) return `\\\\x${v.toString('hex')}`;
  if (v instanceof Date) return v.toISOString();
  return escapeText(typeof v === 'object' ? JSON.stringify(v, bigintJson) : String(v));
}

/** Options of {@link copyRows}. */
export interface CopyRowsOptions {
  /**
   * COPY's format. `'text'` (the default) writes every value as text that PostgreSQL parses by the
   * column's type, so any type works; a Buffer is written as bytea's hex form (`\\x…`).
   * `'binary'` encodes each value by its column's type, with no strings made and nothing escaped:
   * a string or Buffer into a text, varchar, char, name, json or jsonb column is its UTF-8 bytes
   * (PostgreSQL checks the encoding and the JSON), bytea takes bytes, smallint/integer/bigint
   * integers (numbers, bigints, decimal strings), real/double precision numbers, boolean booleans,
   * timestamp/timestamptz Dates or ISO 8601 strings, uuid strings; another type is a ConfigError.
   * The package README has the details.
   */
  format?: 'text' | 'binary';
}

/**
 * Writes many rows with `COPY … FROM STDIN` on the transaction's own connection: the fastest way
 * into a table, and still inside the batch's transaction, so the rows commit with the offset or
 * not at all. Values: strings, numbers, bigints, booleans, Dates, Buffers and objects (JSON);
 * null/undefined is NULL. No ON CONFLICT: a conflicting row fails the batch (use insertRows for
 * upserts). Returns the number of rows written.
 *
 * In `format: 'binary'` a Buffer into a text or JSON column is its text's bytes (the record's
 * value as fetched, with no string made), and a value the column's type cannot take is a
 * TypeError naming its row and column, thrown before anything is sent.
 *
 * ```ts
 * await copyRows(ctx.tx, 'events', ['topic', 'partition', 'offset', 'body'],
 *   batch.messages.map((m) => [m.topic, m.partition, m.offset, m.raw.value]), { format: 'binary' });
 * ```
 */
export async function copyRows(
  tx: Knex.Transaction,
  table: string,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
  options: CopyRowsOptions = {},
): Promise<number> {
  const target = quoteIdentifier('copyRows', 'table', table);
  if (columns.length === 0) throw new ConfigError('copyRows: name at least one column.');
  const cols = columns.map((c) => quoteIdentifier('copyRows', 'column', c)).join(', ');
  if (options.format !== undefined && options.format !== 'text' && options.format !== 'binary') {
    throw new ConfigError(`copyRows: format must be 'text' or 'binary'; got ${JSON.stringify(options.format)}.`);
  }
  if (rows.length === 0) return 0;
  // Checked before COPY starts: failing half-way through a COPY would break the transaction.
  const bad = rows.findIndex((r) => r.length !== columns.length);
  if (bad >= 0) throw new ConfigError(`copyRows: row ${bad} has ${rows[bad]!.length} values for ${columns.length} columns.`);
  // Inside a knex transaction, acquireConnection() hands out the transaction's own connection.
  const client = (await (
    tx as unknown as { client: { acquireConnection(): Promise<pg.Client> } }
  ).client.acquireConnection()) as pg.Client;
  if (options.format === 'binary') return copyBinary(client, target, cols, columns, rows);
  const count = rows.length;
  await streamCopy(client, `COPY ${target} (${cols}) FROM STDIN`, async (put) => {
    let chunk = '';
    for (const row of rows) {
      // Appended field by field to the chunk: no string per line.
      chunk += field(row[0]);
      for (let i = 1; i < row.length; i++) chunk += `\t${field(row[i])}`;
      chunk += '\n';
      if (chunk.length > 65_536) {
        await put(chunk);
        chunk = '';
      }
    }
    // Written: dropped before the COPY's last round trip (see copyBinary).
    rows = [];
    if (chunk.length > 0) await put(chunk);
  });
  return count;
}

/**
 * Runs one `COPY … FROM STDIN`, `write` feeding it through `put` (which waits while the stream
 * is full). PostgreSQL can refuse the data while it is still being written (a duplicate key in
 * the first rows of a large batch): its error is what the call rejects with, and it never goes
 * unhandled (an unhandled rejection ends a worker's process). When `write` itself fails part-way,
 * the COPY is ended with CopyFail, so the connection is left in the transaction for its rollback.
 */
async function streamCopy(
  client: pg.Client,
  sql: string,
  write: (put: (chunk: string | Buffer) => Promise<void>) => Promise<void>,
): Promise<void> {
  const stream = client.query(copyFrom(sql));
  let failed = false;
  const done = new Promise<void>((resolve, reject) => {
    stream.once('finish', () => resolve());
    stream.once('error', (e) => {
      failed = true;
      reject(e);
    });
  });
  done.catch(() => {});
  try {
    await write(async (chunk) => {
      if (failed) await done;
      if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), done]);
    });
    stream.end();
    await done;
  } catch (e) {
    // PostgreSQL's own error wins over what a write saw of it; a stream PostgreSQL has failed has
    // no COPY left to end.
    if (failed) await done;
    stream.destroy(e as Error);
    await done.catch(() => {});
    throw e;
  }
}

/**
 * The columns' types: one row per named column that exists, plus `found` for the table.
 * to_regclass resolves the name as COPY will (search_path included); a domain counts as its base type.
 */
const COLUMN_TYPES = `select r.rel is not null as found, a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
    (case when t.typtype = 'd' then t.typbasetype else a.atttypid end)::int8::text as oid
  from (select to_regclass($1::text) as rel) r
  left join pg_attribute a on a.attrelid = r.rel and a.attnum > 0 and not a.attisdropped and a.attname = any($2::text[])
  left join pg_type t on t.oid = a.atttypid`;

type TypeRow = { found: boolean; name: string | null; type: string | null; oid: string | null };

/** The binary encoder's columns of a (table, columns), read once per process, and its COPY. */
interface Cached {
  readonly columns: readonly BinaryColumn[];
  /** The columns' type OIDs, in order. */
  readonly oids: string;
  /** The lock, the check of the types against `oids`, and the COPY: one simple query. */
  readonly sql: string;
}

const binaryColumns = new Map<string, Cached>();

/** The OIDs of the named columns in order; a missing table or column is a ConfigError. */
function typesOf(target: string, columns: readonly string[], rows: readonly TypeRow[]): Map<string, TypeRow> {
  if (!rows[0]?.found) throw new ConfigError(`copyRows: table ${target} does not exist (or is not visible on the search_path).`);
  const byName = new Map(rows.filter((r) => r.name !== null).map((r) => [r.name!, r]));
  const missing = columns.filter((c) => !byName.has(c));
  if (missing.length > 0)
    throw new ConfigError(`copyRows: table ${target} has no column ${missing.map((c) => `"${c}"`).join(', ')}.`);
  return byName;
}

/**
 * The table is locked first (ROW EXCLUSIVE, the lock COPY takes anyway, held to commit), so that
 * no alter table can change a type between the check and the COPY: one waiting for the lock
 * would otherwise go first and leave the COPY writing bytes encoded for the old type, which
 * PostgreSQL may well accept (a bigint's 8 bytes read as a double). The check is a DO block, as
 * it returns no rows; names are checked identifiers, so they hold no quote to escape.
 */
function copySql(target: string, cols: string, columns: readonly string[], oids: string): string {
  const names = `ARRAY[${columns.map((c) => `''${c}''`).join(', ')}]::text[]`;
  return `do 'begin
  lock table ${target} in row exclusive mode;
  if (select string_agg((case when t.typtype = ''d'' then t.typbasetype else a.atttypid end)::text, '','' order by array_position(${names}, a.attname::text))
        from pg_attribute a join pg_type t on t.oid = a.atttypid
       where a.attrelid = ''${target}''::regclass and a.attnum > 0 and not a.attisdropped and a.attname = any(${names}))
     is distinct from ''${oids}'' then
    raise exception ''copyRows: the column types of ${target} changed since they were read; the next call reads them again'';
  end if;
end'; COPY ${target} (${cols}) FROM STDIN (FORMAT binary)`;
}

async function readColumns(client: pg.Client, target: string, cols: string, columns: readonly string[]): Promise<Cached> {
  const twice = columns.find((c, i) => columns.indexOf(c) !== i);
  if (twice !== undefined) throw new ConfigError(`copyRows: column "${twice}" is named twice.`);
  const byName = typesOf(target, columns, (await client.query<TypeRow>(COLUMN_TYPES, [target, columns])).rows);
  const unsupported = columns.filter((c) => !BINARY_KINDS.has(Number(byName.get(c)!.oid)));
  if (unsupported.length > 0) {
    const list = unsupported.map((c) => `"${c}" (${byName.get(c)!.type})`).join(', ');
    throw new ConfigError(
      `copyRows: format 'binary' cannot write ${target} column ${list}; it writes ${SUPPORTED_TYPES}. format: 'text' takes any type.`,
    );
  }
  const oids = columns.map((c) => byName.get(c)!.oid).join(',');
  return {
    columns: columns.map((c) => ({ name: c, type: byName.get(c)!.type!, kind: BINARY_KINDS.get(Number(byName.get(c)!.oid))! })),
    oids,
    sql: copySql(target, cols, columns, oids),
  };
}

/**
 * Binary COPY. The whole batch is encoded before the COPY starts, so a value its column cannot
 * take fails the call with the transaction still usable. The types are cached, and checked in
 * the COPY's own round trip (copySql): when they changed, the COPY fails (and with it the
 * transaction: the batch is retried); the entry is dropped on any failure, so the next call reads
 * the types again.
 */
async function copyBinary(
  client: pg.Client,
  target: string,
  cols: string,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
): Promise<number> {
  const key = `${target} (${cols})`;
  let cached = binaryColumns.get(key);
  let chunks: Buffer[];
  if (cached) {
    try {
      chunks = encodeBinaryRows(cached.columns, rows);
    } catch (e) {
      // A value the cached types refuse may suit the table's types now: it is tried against them.
      binaryColumns.delete(key);
      const now = await readColumns(client, target, cols, columns);
      binaryColumns.set(key, now);
      if (now.oids === cached.oids) throw e;
      cached = now;
      chunks = encodeBinaryRows(cached.columns, rows);
    }
  } else {
    cached = await readColumns(client, target, cols, columns);
    binaryColumns.set(key, cached);
    chunks = encodeBinaryRows(cached.columns, rows);
  }
  const count = rows.length;
  // Encoded, the rows are not needed any more: an async function keeps its parameters alive across
  // its awaits, and a batch's rows (a few hundred bytes a record, with their strings and views)
  // would live through the COPY's round trips, copied by every scavenge meanwhile.
  rows = [];
  try {
    await streamCopy(client, cached.sql, async (put) => {
      for (const chunk of chunks) await put(chunk);
    });
    return count;
  } catch (e) {
    binaryColumns.delete(key);
    throw e;
  }
}
