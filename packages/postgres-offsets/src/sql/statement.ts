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
