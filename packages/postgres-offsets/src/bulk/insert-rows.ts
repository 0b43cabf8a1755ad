import { ConfigError } from '@oncely/core';
import type { Knex } from 'knex';
import { quoteIdentifier } from '../identifiers.js';

/** A row to insert: column name → value. Buffers become bytea, bigints exact numbers, Dates timestamps. */
export type Row = Record<string, unknown>;

/** Options of {@link insertRows}. */
export interface InsertRowsOptions {
  /**
   * What to do when a row conflicts with a unique constraint on these columns: `'ignore'` skips it
   * (`do nothing`), `{ merge: [...] }` overwrites those columns with the new values (`do update`).
   * Default: no conflict clause (a conflict fails the statement).
   */
  onConflict?: { columns: readonly string[]; action: 'ignore' | { merge: readonly string[] } };
}

/**
 * JSON.stringify cannot carry bigint or bytes; Postgres reads both back from these strings. The
 * holder (`this`) still has the original Buffer, before Buffer.prototype.toJSON rewrote it.
 */
function jsonValue(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const original = this[key];
  if (Buffer.isBuffer(original)) return `\\x${original.toString('hex')}`;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * Inserts many rows in ONE statement, for batch handlers: the rows travel as a single JSON parameter
 * and `json_populate_recordset(null::<table>, …)` turns them into rows of the table's own type, so
 * every value gets its column's type without a cast list. Table and column names are checked by
 * oncely's one identifier rule and double-quoted (identifiers.ts); values are always bound. Columns
 * are the union of the rows' keys; a key missing from a row inserts null (not the column default).
 * Returns the number of rows inserted.
 *
 * ```ts
 * await insertRows(ctx.tx, 'page_views', batch.messages.map((m) => ({ page: m.value.page, at: m.timestamp })), {
 *   onConflict: { columns: ['page', 'at'], action: 'ignore' },
 * });
 * ```
 */
export async function insertRows(
  tx: Knex | Knex.Transaction,
  table: string,
  rows: readonly Row[],
  options: InsertRowsOptions = {},
): Promise<number> {
  const target = quoteIdentifier('insertRows', 'table', table);
  if (rows.length === 0) return 0;
  const columnSet = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) columnSet.add(key);
  if (columnSet.size === 0) throw new ConfigError('insertRows: the rows have no columns.');
  const column = (c: string) => quoteIdentifier('insertRows', 'column', c);
  const list = [...columnSet].map(column).join(', ');
  let sql = `insert into ${target} (${list}) select ${list} from json_populate_recordset(null::${target}, ?::json)`;
  const bindings: unknown[] = [JSON.stringify(rows, jsonValue)];
  const conflict = options.onConflict;
  if (conflict) {
    if (conflict.columns.length === 0) throw new ConfigError('insertRows: onConflict.columns must name at least one column.');
    sql += ` on conflict (${conflict.columns.map(column).join(', ')})`;
    if (conflict.action === 'ignore') {
      sql += ' do nothing';
    } else {
      const merge = conflict.action.merge;
      if (merge.length === 0) throw new ConfigError('insertRows: onConflict merge must name at least one column.');
      sql += ` do update set ${merge.map((c) => `${column(c)} = excluded.${column(c)}`).join(', ')}`;
    }
  }
  const result = await tx.raw<{ rowCount: number | null }>(sql, bindings as Knex.RawBinding[]);
  return result.rowCount ?? 0;
}
