import type { Knex } from 'knex';

/** How a handler tried to end the transaction: a knex method, or SQL it sent (then undefined). */
export type EndingCall = 'commit' | 'rollback' | 'sql';

/** The knex methods that end a transaction. */
const ENDING_METHODS = new Set<PropertyKey>(['commit', 'rollback']);

/**
 * SQL that ends the transaction when it is the statement's start: COMMIT, END, ABORT, PREPARE
 * TRANSACTION, ROLLBACK (but not ROLLBACK TO SAVEPOINT, which ends only a savepoint of the
 * handler's own). A best effort: what it misses (several statements in one string, the raw pg
 * client) the store still detects after the handler, from the transaction's open mark.
 */
const ENDING_SQL = /^\s*(commit|end|abort|prepare\s+transaction|rollback(?!\s+(?:work\s+|transaction\s+)?to\b))\b/i;

/**
 * The transaction as a handler sees it: the knex transaction with commit() and rollback() taken
 * away, and raw SQL that would end it refused. knex settles a transaction as soon as commit() is
 * called and drops the errors of the statements that follow, so a handler's commit would
 * otherwise commit its writes without the offset compare-and-set and be reported as success. A
 * refusal is a rejected promise (or a throw from raw()) and is reported through `refused`, so
 * that the batch fails even when the handler catches it. Nested transactions (ctx.tx.transaction(),
 * savepoints of the handler's own) keep working.
 */
export function guardTransaction(trx: Knex.Transaction, refused: (call: EndingCall) => Error): Knex.Transaction {
  const raw = (sql: unknown, ...rest: unknown[]) => {
    if (typeof sql === 'string' && ENDING_SQL.test(sql)) throw refused('sql');
    return (trx.raw as (...args: unknown[]) => unknown)(sql, ...rest);
  };
  return new Proxy(trx, {
    get(target, property, receiver) {
      if (ENDING_METHODS.has(property)) return () => Promise.reject(refused(property as 'commit' | 'rollback'));
      if (property === 'raw') return raw;
      return Reflect.get(target, property, receiver);
    },
  });
}
