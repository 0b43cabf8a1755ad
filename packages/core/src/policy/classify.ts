/**
 * The one place that decides what kind of failure an error is, and so what the runtime does:
 *
 * - `transient`: the database or the broker is unavailable for now (connection refused, reset or
 *   ended, an administrator shutdown, a serialization failure, a deadlock, a lock timeout, too
 *   many connections, a statement cancelled by oncely's own shutdown). Back off, retry, count; it
 *   never costs a record its retries.
 * - `record`: this record caused it (a handler's error, a codec failure, a data error from the
 *   handler's own SQL such as 22xxx or 23xxx). The record's retry budget, then the dead letters.
 * - `systemic`: code, configuration, schema or permissions (an undefined table or column, a
 *   missing privilege, a syntax error, a binding missing from the container, a position past the
 *   end of the log, a schema too new), or anything oncely's own statements get that no retry fixes.
 *   Stop loudly with what to do: retrying cannot help, and dead-lettering would drain every record.
 *   One of them gets a retry budget first: a batch whose transaction the store ended for staying
 *   idle too long (IDLE_IN_TRANSACTION: the handler did slow work that is not the database's
 *   inside it), since a one-off pause passes; it is never taken for an outage.
 */
import { type ErrorClass, OncelyError, type OncelyErrorCode } from '../errors.js';

export type { ErrorClass };

/** Where an error came from: a handler (or codec) for a record, or oncely's own statements. */
export type ErrorSource = 'handler' | 'oncely';

/** What a store knows about its driver's errors (PostgresStore reads SQLSTATEs and socket errors). */
export interface StoreErrorClassifier {
  /** The class of a driver error, or undefined when the store cannot tell. */
  classifyError?(e: unknown): ErrorClass | undefined;
  /** Older stores: whether an error means the store failed for now (connection lost, lock timeout). */
  isTransientError?(e: unknown): boolean;
  /** What an operator does about a systemic driver error (a missing table: run the migration). */
  remedy?(e: unknown): string | undefined;
}

const TRANSIENT_CODES: ReadonlySet<OncelyErrorCode> = new Set([
  'STORE_UNAVAILABLE',
  'KAFKA_UNAVAILABLE',
  'PARTITION_HELD',
  'ABORTED',
]);

const SYSTEMIC_CODES: ReadonlySet<OncelyErrorCode> = new Set([
  'CONFIG_INVALID',
  'STATE_INVALID',
  'SCHEMA_TOO_NEW',
  'SCHEMA_TOO_OLD',
  'TRANSACTION_ENDED',
  'OFFSET_OUT_OF_RANGE',
  'KAFKA_AUTH_FAILED',
  'TOPIC_NOT_FOUND',
  'CORRUPT_RECORD_BATCH',
  'MESSAGE_FORMAT_UNSUPPORTED',
  'COMPRESSION_UNSUPPORTED',
  'PARTITION_STOPPED',
  // The handler kept its batch transaction idle past the store's timeout: the runner retries it
  // within the retry budget first (a one-off pause passes), then stops (partition-runner.ts).
  'IDLE_IN_TRANSACTION',
]);

const RECORD_CODES: ReadonlySet<OncelyErrorCode> = new Set(['CODEC_FAILED', 'NON_RETRIABLE', 'HANDLER_FAILED']);

/**
 * Classifies an error. `source` says who got it: a record's handler (its own SQL included), or
 * oncely's own statements (the offset compare-and-set, a dead-letter row, the crash count), where
 * whatever is not transient is systemic: no record is to blame, and no retry fixes it.
 */
export function classifyError(e: unknown, source: ErrorSource, store?: StoreErrorClassifier): ErrorClass {
  // A RecordFailedError wraps what a handler or codec threw, wherever it is caught.
  if (OncelyError.is(e) && e.name === 'RecordFailedError') return classifyAny(e, 'handler', store);
  const cls = classifyAny(e, source, store);
  return source === 'oncely' && cls === 'record' ? 'systemic' : cls;
}

function classifyAny(e: unknown, source: ErrorSource, store: StoreErrorClassifier | undefined): ErrorClass {
  if (OncelyError.is(e)) {
    // A RecordFailedError wraps what the handler threw: that decides.
    if (e.name === 'RecordFailedError' && e.cause !== undefined) return classifyAny(e.cause, 'handler', store);
    if (TRANSIENT_CODES.has(e.code)) return 'transient';
    if (SYSTEMIC_CODES.has(e.code)) return 'systemic';
    if (RECORD_CODES.has(e.code)) return 'record';
    // STORE_FAILED, KAFKA_PROTOCOL, FENCED and the rest: the driver error underneath decides.
    const fromStore = fromDriver(e.cause, store);
    if (fromStore) return fromStore;
    if (e.code === 'STORE_FAILED') return 'systemic';
    return e.retriable ? 'transient' : source === 'handler' ? 'record' : 'systemic';
  }
  const fromStore = fromDriver(e, store);
  if (fromStore) return fromStore;
  // A handler's own error that no one recognises: the record's (retry budget, then dead letter).
  return source === 'handler' ? 'record' : 'systemic';
}

/** The store's verdict on an error or the first error of its cause chain it has one for. */
function fromDriver(e: unknown, store: StoreErrorClassifier | undefined): ErrorClass | undefined {
  if (!store) return undefined;
  let current = e;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const cls = store.classifyError?.(current) ?? (store.isTransientError?.(current) ? 'transient' : undefined);
    if (cls) return cls;
    current = typeof current === 'object' ? (current as { cause?: unknown }).cause : undefined;
  }
  return undefined;
}
