import type { Knex } from 'knex';
import type { Rows } from './rows.js';

declare const shape: unique symbol;

/**
 * A statement's text, carrying as types only the values it binds by name (`:group`, knex's named
 * bindings) and the row it returns, so a call site cannot bind a name the text lacks or forget one
 * it uses. `::type` casts stay casts: knex reads `:name` only where a single colon precedes it, and
 * no binding is named like a type (sql/statements.test.ts renders every statement to check both).
 * The params are a function's parameter so that a statement binding fewer names (the benchmark's
 * unfenced commit) is assignable where one binding more is expected.
 */
export type Statement<P, R = never> = string & { readonly [shape]?: (params: P) => R };

/** Runs `statement` with its named values on a pool or a transaction. */
export async function query<P extends object, R>(
  db: Knex | Knex.Transaction,
  statement: Statement<P, R>,
  params: NoInfer<P>,
): Promise<Rows<R>> {
  return await db.raw<Rows<R>>(statement, params as Knex.ValueDict);
}

/**
 * `SET LOCAL lock_timeout` in function form (set_config(…, true)): a bound value, so the setting
 * needs no text built from a number.
 */
export const setLockTimeoutSql: Statement<{ lockTimeout: string }> = `select set_config('lock_timeout', :lockTimeout, true)`;

/**
 * A statement compiled once to node-postgres's positional form: `$1…$n`, one per `:name` in the
 * text (a name used twice gets two placeholders, as knex renders it), with the name each binds.
 */
export interface PositionalStatement<P, R = never> {
  readonly text: string;
  readonly names: readonly (keyof P & string)[];
  readonly [shape]?: (params: P) => R;
}

/** `:name` (a colon not preceded by another: `::type` is a cast), the rule knex's named bindings follow here. */
export const NAMED = /(?<!:):([A-Za-z_]\w*)/g;

/** Compiles `statement` once (see {@link PositionalStatement}). */
export function positional<P extends object, R>(statement: Statement<P, R>): PositionalStatement<P, R> {
  const names: string[] = [];
  const text = statement.replace(NAMED, (_m, name: string) => {
    names.push(name);
    return `$${names.length}`;
  });
  return { text, names: names as (keyof P & string)[] };
}

/** What {@link queryInTransaction} needs of a knex transaction's client: the connection it holds. */
interface TransactionConnection {
  client: { acquireConnection(): Promise<{ query(config: { text: string; values: unknown[] }): Promise<unknown> }> };
}

/**
 * Runs a compiled statement on the connection of a knex transaction, without knex's per-statement
 * work (parsing the named bindings again, events, the runner): for the store's own statements of
 * every batch. Like knex, it refuses a transaction that has completed: its connection may be back
 * in the pool, serving another transaction.
 */
export async function queryInTransaction<P extends object, R>(
  trx: Knex.Transaction,
  statement: PositionalStatement<P, R>,
  params: NoInfer<P>,
): Promise<Rows<R>> {
  const connection = await (trx as unknown as TransactionConnection).client.acquireConnection();
  if (trx.isCompleted()) throw new Error('Transaction query already complete: the batch transaction has ended.');
  const values = new Array<unknown>(statement.names.length);
  for (let i = 0; i < values.length; i++) {
    const v = params[statement.names[i]!];
    if (v === undefined) throw new Error(`Undefined binding :${statement.names[i]} in a store statement.`);
    values[i] = v;
  }
  return (await connection.query({ text: statement.text, values })) as Rows<R>;
}

/**
 * A string as an SQL literal: quotes doubled, and backslashes doubled under E'' (the form
 * node-postgres's escapeLiteral gives), so that it reads the same whatever
 * standard_conforming_strings is. A NUL would end the query text early: refused.
 */
export function literal(value: string): string {
  if (value.includes('\0')) throw new Error('An SQL literal cannot hold a NUL character.');
  const quoted = `'${value.replaceAll("'", "''").replaceAll('\\', '\\\\')}'`;
  return value.includes('\\') ? ` E${quoted}` : quoted;
}

/**
 * A statement whose `:name`s are filled with their values as quoted literals, for a simple query
 * (several statements in one round trip, which bound values cannot be sent with). Casts in the
 * text (`:epoch::bigint`) type the literals, as they type bound values. Split once at its names.
 */
export interface InlinedStatement<P> {
  /** The text with the values of `params` in it. */
  render(params: NoInfer<P>): string;
}

/** Compiles `statement` once for {@link InlinedStatement.render}. */
export function inlined<P extends object>(statement: Statement<P, unknown>): InlinedStatement<P> {
  const parts = statement.split(NAMED);
  return {
    render(params) {
      // split() with a capturing group: text, name, text, name, …, text.
      let out = parts[0]!;
      for (let i = 1; i < parts.length; i += 2) {
        const v = (params as Record<string, unknown>)[parts[i]!];
        if (v === undefined || v === null) throw new Error(`Undefined binding :${parts[i]} in a store statement.`);
        out += literal(String(v)) + parts[i + 1]!;
      }
      return out;
    },
  };
}
