import type { Knex } from 'knex';
import { mapStoreError } from '../errors.js';
import { query, setLockTimeoutSql } from '../sql/statement.js';
import type { PostgresStore } from '../store/store.js';
import { transactionKeepingError } from '../store/transaction-errors.js';
import { writeAudit } from './audit.js';
import type { AuditOptions, OffsetSource } from './types.js';

/** A pool or a transaction: the reads a reset repeats inside its transaction take either. */
export type Db = Knex | Knex.Transaction;

/** What every part of OffsetsAdmin works with; built once by its constructor. */
export interface AdminContext {
  readonly store: PostgresStore;
  readonly knex: Knex;
  /** The quoted schema, validated by the store's options: the only identifier in the admin's texts. */
  readonly s: string;
  readonly lockTimeout: string;
  readonly kafka: OffsetSource | undefined;
  /** Recorded in admin_audit when an action names none. */
  readonly actor: string;
}

/** Driver errors as oncely's (StoreUnavailableError for outages), naming the action. */
export function mapError(ctx: AdminContext, e: unknown, action: string) {
  return mapStoreError(e, action, ctx.store.options.target, ctx.store.options.lockTimeoutMs);
}

/** Runs `fn`, mapping what it throws with {@link mapError}. */
export async function run<T>(ctx: AdminContext, action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw mapError(ctx, e, action);
  }
}

/** A transaction under `SET LOCAL lock_timeout`, as every admin change runs (its error survives a failed ROLLBACK). */
export function transaction<T>(ctx: AdminContext, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return transactionKeepingError(ctx.knex, async (trx) => {
    await query(trx, setLockTimeoutSql, { lockTimeout: ctx.lockTimeout });
    return fn(trx);
  });
}

/** The admin_audit row of a change, in the change's transaction, as `options.actor` or the admin's actor. */
export function audit(
  ctx: AdminContext,
  trx: Knex.Transaction,
  action: string,
  group: string,
  details: object,
  options: AuditOptions,
): Promise<bigint> {
  return writeAudit(trx, ctx.s, { actor: options.actor ?? ctx.actor, action, group, details });
}
