import { IdleInTransactionError } from '@oncely/core';
import type { Knex } from 'knex';
import { isIdleInTransactionTimeout } from '../errors.js';

/**
 * knex.transaction(), rejecting with the error `work` threw. knex sends ROLLBACK after it, and
 * when that fails too (the connection is gone: PostgreSQL ended the session, e.g. with 25P03 for
 * an idle transaction) knex rejects with the ROLLBACK's error ("Connection terminated
 * unexpectedly"), which changes the error's class (STORE_UNAVAILABLE instead of the cause).
 * Nothing is committed either way. A failed COMMIT, or knex settling while `work` still runs,
 * rejects as knex does. Every transaction of the store and the admin runs through this.
 */
export async function transactionKeepingError<R>(knex: Knex, work: (trx: Knex.Transaction) => Promise<R>): Promise<R> {
  let failure: { error: unknown } | undefined;
  try {
    return await knex.transaction(async (trx) => {
      try {
        return await work(trx);
      } catch (error) {
        failure = { error };
        throw error;
      }
    });
  } catch (e) {
    throw failure ? failure.error : e;
  }
}

/** The part of a node-postgres client the watch listens on. */
export interface ErrorEmitter {
  on?(event: 'error', listener: (e: unknown) => void): unknown;
  removeListener?(event: 'error', listener: (e: unknown) => void): unknown;
}

/**
 * Whether PostgreSQL ended a transaction of the store for staying idle in it (25P03,
 * idle_in_transaction_session_timeout). It says so on the connection, with no statement running,
 * so the next statement only sees a dead connection: the watch listens there. A process that was
 * not reading its socket (frozen, its event loop blocked) sends that statement before it reads the
 * error, and the statement gets the 25P03 itself: see {@link IdleWatch.ended}'s errors.
 */
export class IdleWatch {
  #ended = false;
  #connection: ErrorEmitter | undefined;
  #onEnded: ((error: unknown) => void) | undefined;
  readonly #onError = (e: unknown) => {
    if (!isIdleInTransactionTimeout(e)) return;
    this.#ended = true;
    this.#onEnded?.(e);
  };

  /** Calls `listener` with the connection's error once PostgreSQL ended the transaction for idling. */
  onEnded(listener: ((error: unknown) => void) | undefined): void {
    this.#onEnded = listener;
  }

  /** Listens on the transaction's connection until {@link stop}. */
  async start(trx: Knex.Transaction): Promise<void> {
    this.watch((await trx.client.acquireConnection()) as ErrorEmitter);
  }

  /** Listens on `connection` until {@link stop}. */
  watch(connection: ErrorEmitter): void {
    this.#connection = connection;
    connection.on?.('error', this.#onError);
  }

  stop(): void {
    this.#connection?.removeListener?.('error', this.#onError);
    this.#onEnded = undefined;
  }

  /** Whether the transaction was ended for idling: seen on its connection, or in one of these errors (their causes included). */
  ended(...errors: unknown[]): boolean {
    return this.#ended || errors.some((e) => isIdleInTransactionTimeout(e));
  }
}

/**
 * The error of a transaction that PostgreSQL ended for idling: `action` names the operation
 * (`runBatch orders/3`), `scope` what the transaction was.
 */
export function idleEndedError(action: string, scope: 'batch' | 'transaction', ms: number, cause: unknown) {
  const of = scope === 'batch' ? "the batch's transaction" : 'the transaction';
  return new IdleInTransactionError(
    `${action}: PostgreSQL ended ${of} because it stayed idle ` +
      `(no statement running) for longer than idleInTransactionTimeoutMs (${ms} ms, --idle-in-transaction-timeout; ` +
      `SQLSTATE 25P03, idle_in_transaction_session_timeout): the handler spent that long inside the ${scope} on work ` +
      "that is not the database's (a call to another service, a slow computation), or the process was paused. " +
      `Nothing of the ${scope} was committed.`,
    ms,
    { cause },
  );
}
