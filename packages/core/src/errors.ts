/**
 * Every error oncely throws is an {@link OncelyError}: a stable `code` from a closed union that
 * programs can switch on, a `retriable` flag that says whether trying again can help, and the
 * original error as `cause`.
 */

/** The closed set of error codes of @oncely/core and the packages built on it. */
export type OncelyErrorCode =
  | 'CONFIG_INVALID'
  | 'STATE_INVALID'
  | 'CODEC_FAILED'
  | 'HANDLER_FAILED'
  | 'NON_RETRIABLE'
  | 'FENCED'
  | 'OFFSET_OUT_OF_RANGE'
  | 'KAFKA_UNAVAILABLE'
  | 'KAFKA_PROTOCOL'
  | 'CORRUPT_RECORD_BATCH'
  | 'MESSAGE_FORMAT_UNSUPPORTED'
  | 'KAFKA_AUTH_FAILED'
  | 'COMPRESSION_UNSUPPORTED'
  | 'TOPIC_NOT_FOUND'
  | 'STORE_UNAVAILABLE'
  | 'STORE_FAILED'
  | 'SCHEMA_TOO_NEW'
  | 'SCHEMA_TOO_OLD'
  | 'TRANSACTION_ENDED'
  | 'PARTITION_HELD'
  | 'PARTITION_STOPPED'
  | 'CRASH_LOOP'
  | 'CIRCUIT_OPEN'
  | 'IDLE_IN_TRANSACTION'
  | 'ABORTED';

/**
 * What kind of failure an error is (see classifyError): transient (retry, count), caused by the
 * record (retry budget, then dead letter), or systemic (stop loudly: no retry fixes it).
 */
export type ErrorClass = 'transient' | 'record' | 'systemic';

export interface OncelyErrorOptions {
  cause?: unknown;
  retriable?: boolean;
}

/**
 * The brand every oncely error carries. A registered symbol, so that an error thrown by one copy of
 * the package (a store that bundles its own @oncely/core) is still recognised by another, where
 * `instanceof` would say no.
 */
const BRAND: unique symbol = Symbol.for('oncely.error') as never;

/** Base class of oncely's errors. */
export class OncelyError extends Error {
  override readonly name: string = 'OncelyError';
  readonly code: OncelyErrorCode;
  /** Whether the same operation may succeed when tried again (a broker or database that comes back). */
  readonly retriable: boolean;
  readonly [BRAND] = true;

  constructor(code: OncelyErrorCode, message: string, options: OncelyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
  }

  /**
   * Whether `e` is an oncely error (of any copy of the package), and of `code` when given:
   * `OncelyError.is(e, 'FENCED')`. Prefer it to `instanceof`.
   */
  static is(e: unknown, code?: OncelyErrorCode): e is OncelyError {
    if (typeof e !== 'object' || e === null || (e as { [BRAND]?: unknown })[BRAND] !== true) return false;
    return code === undefined || (e as OncelyError).code === code;
  }
}

/** A bad option or definition: the message names the option and the fix. */
export class ConfigError extends OncelyError {
  override readonly name = 'ConfigError';
  constructor(message: string, options: OncelyErrorOptions = {}) {
    super('CONFIG_INVALID', message, options);
  }
}

/** A call that is not allowed in the current lifecycle state (says which state). */
export class StateError extends OncelyError {
  override readonly name = 'StateError';
  constructor(message: string) {
    super('STATE_INVALID', message);
  }
}

/** A record's key or value could not be decoded, or failed its schema. Never fixed by retrying. */
export class CodecError extends OncelyError {
  override readonly name = 'CodecError';
  constructor(message: string, options: OncelyErrorOptions = {}) {
    super('CODEC_FAILED', message, { ...options, retriable: false });
  }
}

/**
 * Thrown by a handler to say that this record can never succeed (a business rule, a bad
 * reference): the failure policy sends it straight to the dead letters without retrying.
 */
export class NonRetriableError extends OncelyError {
  override readonly name = 'NonRetriableError';
  constructor(message: string, options: OncelyErrorOptions = {}) {
    super('NON_RETRIABLE', message, { ...options, retriable: false });
  }
}

/**
 * This worker no longer owns the partition (another worker claimed it, or an operator rewound
 * it): its transaction was rolled back and it must drop the partition.
 */
export class FencedError extends OncelyError {
  override readonly name = 'FencedError';
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly epoch: bigint,
    message = `Fenced on ${topic}/${partition}: epoch ${epoch} is no longer current (another worker claimed the partition or it was rewound); the batch was rolled back.`,
  ) {
    super('FENCED', message);
  }
}

/**
 * A claim found the partition held by another worker whose lease is still live: claims take only
 * what is free, released or expired. Retriable: the lease ends when its holder releases it or stops
 * renewing it. An operator who means to take it anyway claims with `force`.
 */
export class PartitionHeldError extends OncelyError {
  override readonly name = 'PartitionHeldError';
  constructor(
    readonly topic: string,
    readonly partition: number,
    /** The live holder, or null when the row was created by a concurrent claim this one lost to. */
    readonly owner: string | null,
    /** What is left of the holder's lease by the store's clock, in ms. */
    readonly leaseLeftMs: number,
  ) {
    super(
      'PARTITION_HELD',
      `${topic}/${partition} is held by ${owner === null ? 'another worker' : `worker ${owner}`} ` +
        `(lease left ${(leaseLeftMs / 1000).toFixed(1)} s); a claim takes only a free, released or expired partition.`,
      { retriable: true },
    );
  }
}

/** The stored offset is outside the partition's log (retention deleted the data, or it was truncated). */
export class OffsetOutOfRangeError extends OncelyError {
  override readonly name = 'OffsetOutOfRangeError';
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: bigint,
    readonly logStartOffset: bigint | undefined,
    readonly highWatermark: bigint | undefined,
  ) {
    super(
      'OFFSET_OUT_OF_RANGE',
      `Offset ${offset} of ${topic}/${partition} is out of range` +
        (logStartOffset !== undefined ? ` (the log now spans ${logStartOffset}..${highWatermark ?? '?'})` : '') +
        '. Records were deleted by retention before they were processed. Choose a policy with ' +
        "offsetOutOfRange: 'earliest' | 'latest', or reset the position with `oncely offsets reset`.",
    );
  }
}

/**
 * A fetched record batch of one partition cannot be read, and no retry of the worker can fix it.
 * A PartitionReader throws it from fetch(); the runtime then stops that partition (the claim is
 * kept, nothing at or after the batch is applied) and the other partitions go on.
 */
export class PartitionReadError extends OncelyError {
  override readonly name: string = 'PartitionReadError';
  constructor(
    code: 'CORRUPT_RECORD_BATCH' | 'MESSAGE_FORMAT_UNSUPPORTED',
    readonly topic: string,
    readonly partition: number,
    /** The first offset of the batch that cannot be read: the partition's position stays at or before it. */
    readonly offset: bigint,
    message: string,
    options: OncelyErrorOptions = {},
  ) {
    super(code, message, { ...options, retriable: false });
  }
}

/** The broker could not be reached or answered with a retriable error. */
export class KafkaUnavailableError extends OncelyError {
  override readonly name = 'KafkaUnavailableError';
  constructor(message: string, options: OncelyErrorOptions = {}) {
    super('KAFKA_UNAVAILABLE', message, { retriable: true, ...options });
  }
}

/** The database could not be reached, or a statement failed in a way that may pass on retry. */
export class StoreUnavailableError extends OncelyError {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options: OncelyErrorOptions = {}) {
    super('STORE_UNAVAILABLE', message, { retriable: true, ...options });
  }
}

/** The worker was stopped while the operation ran. */
export class AbortedError extends OncelyError {
  override readonly name = 'AbortedError';
  constructor(message = 'The operation was aborted because the worker is stopping.') {
    super('ABORTED', message, { retriable: true });
  }
}

/** A record's handler (or codec) failed: names the record; `cause` is the original error. */
export class RecordFailedError extends OncelyError {
  override readonly name = 'RecordFailedError';
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: bigint | undefined,
    cause: unknown,
  ) {
    const err = toError(cause);
    super(
      OncelyError.is(cause, 'CODEC_FAILED') ? 'CODEC_FAILED' : 'HANDLER_FAILED',
      `${offset === undefined ? `Batch handler of ${topic}/${partition}` : `Record ${topic}/${partition}/${offset}`} failed: ${err.message}`,
      { cause, retriable: OncelyError.is(cause) ? cause.retriable : true },
    );
  }
}

/**
 * The worker process died `crashBudget` times in a row while one record was applied alone (see
 * crashBudget): the error its partition stops with (onCrashLoop: 'stop-partition', the default) or
 * the record is dead-lettered with (onCrashLoop: 'dead-letter').
 */
export class WorkerCrashedError extends OncelyError {
  override readonly name = 'WorkerCrashedError';
  constructor(message: string) {
    super('CRASH_LOOP', message, { retriable: false });
  }
}

/**
 * A partition wrote `maxConsecutiveDeadLetters` dead letters in a row without applying a record
 * in between: the handler is probably broken for every record (a deploy ahead of its migration),
 * so the partition stops instead of draining the topic into the dead letters.
 */
export class CircuitOpenError extends OncelyError {
  override readonly name = 'CircuitOpenError';
  constructor(message: string) {
    super('CIRCUIT_OPEN', message, { retriable: false });
  }
}

/**
 * The store ended a batch's transaction because it stayed idle (no statement running) for longer
 * than the store allows (PostgresStore's idleInTransactionTimeoutMs, PostgreSQL's
 * idle_in_transaction_session_timeout, SQLSTATE 25P03). Nothing of the batch was committed. The
 * handler's doing, not an outage: it spent that long on something other than the database inside
 * the batch (or the process was paused). The runtime retries the batch within the retry budget
 * (a one-off pause passes), then stops the partition loudly.
 */
export class IdleInTransactionError extends OncelyError {
  override readonly name = 'IdleInTransactionError';
  constructor(
    message: string,
    /** The store's idle timeout, in ms. */
    readonly timeoutMs: number,
    options: OncelyErrorOptions = {},
  ) {
    super('IDLE_IN_TRANSACTION', message, { ...options, retriable: false });
  }
}

/**
 * A handler ended the batch's transaction itself (ctx.tx.commit() or rollback(), or COMMIT or
 * ROLLBACK sent as SQL). oncely owns that transaction: it commits the handler's writes together
 * with the offset, and only then counts the batch as applied. A code error, not the record's
 * fault: the worker stops (the record is not dead-lettered) so that the handler gets fixed.
 */
export class TransactionEndedError extends OncelyError {
  override readonly name = 'TransactionEndedError';
  constructor(
    /** Whose transaction: `topic/partition` for a batch. */
    readonly scope: string,
    /**
     * How: the knex method the handler called, 'sql' for an ending statement refused before it ran,
     * undefined when the transaction was found ended after the handler (SQL that got through).
     */
    readonly method: 'commit' | 'rollback' | 'sql' | undefined,
  ) {
    const tp = scope;
    const fix = "oncely owns the transaction and commits the handler's writes together with the offset.";
    super(
      'TRANSACTION_ENDED',
      method === 'commit' || method === 'rollback'
        ? `The handler of ${tp} called ctx.tx.${method}(): ${fix} Remove the call (throw an error to fail a record); ` +
            'nothing of the batch was committed, and the worker stops until the handler is fixed.'
        : method === 'sql'
          ? `The handler of ${tp} sent SQL that ends the transaction (COMMIT, ROLLBACK, END, ABORT or PREPARE TRANSACTION): ` +
            `${fix} It was refused before it ran; remove it. Nothing of the batch was committed, and the worker stops until ` +
            'the handler is fixed.'
          : `The transaction of a batch of ${tp} was no longer open when oncely went to commit its offset: the handler ended ` +
            'it with SQL (COMMIT or ROLLBACK in a multi-statement string, or through the pg client). The offset was not moved, ' +
            'so the batch will be applied again; what the handler wrote before a COMMIT, or after either, was committed on its ' +
            `own and will be there twice unless it is idempotent. ${fix} Remove the statement; the worker stops until it is fixed.`,
      { retriable: false },
    );
  }
}

/**
 * A partition met an error that no retry fixes (systemic: a missing table or column, a privilege,
 * a binding missing from the container, a stored position past the end of the log, a
 * configuration error): it stopped at `offset` without applying anything at or after it, and the
 * worker stops with this error (`oncely run` exits 1 with this message). `cause` is the original
 * error; the message says what to do.
 */
export class PartitionStoppedError extends OncelyError {
  override readonly name = 'PartitionStoppedError';
  constructor(
    readonly topic: string,
    readonly partition: number,
    /** The stored position: nothing at or after it was applied. */
    readonly offset: bigint,
    /** What failed, in a few words, and what to do. */
    what: string,
    cause: unknown,
  ) {
    super(
      'PARTITION_STOPPED',
      `Partition ${topic}/${partition} stopped at offset ${offset}: ${what} No retry fixes this, so nothing at or after ` +
        `offset ${offset} was applied or dead-lettered and the worker stops; once fixed, start it again and it goes on ` +
        'from this offset.',
      { cause, retriable: false },
    );
  }
}

/** Set on an error once a line at error level has said it in full (see {@link markLogged}). */
const LOGGED: unique symbol = Symbol.for('oncely.logged') as never;

/**
 * Marks an error as logged in full: a line at error level has said it, with what to do. Whoever
 * ends with it afterwards (the worker's failure line, `oncely run`) refers to that line instead of
 * printing the message again. A registered symbol, as the brand: any copy of the package sees it.
 */
export function markLogged<E extends Error>(error: E): E {
  try {
    Object.defineProperty(error, LOGGED, { value: true, configurable: true });
  } catch {
    // A frozen error stays unmarked: it is printed again, never lost.
  }
  return error;
}

/** Whether {@link markLogged} marked this error. */
export function wasLogged(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { [LOGGED]?: unknown })[LOGGED] === true;
}

/** Turns anything thrown into an Error (strings and objects included). */
export function toError(e: unknown): Error {
  if (e instanceof Error) return e;
  if (typeof e === 'string') return new Error(e);
  // An Error of another realm (a vm context, a worker's structured clone) is not `instanceof Error`.
  if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') {
    const error = new Error((e as { message: string }).message, { cause: e });
    const name = (e as { name?: unknown }).name;
    if (typeof name === 'string') error.name = name;
    return error;
  }
  try {
    return new Error(`Non-error thrown: ${JSON.stringify(e)}`);
  } catch {
    return new Error(`Non-error thrown: ${String(e)}`);
  }
}

/** Whether retrying may help: oncely errors say so; unknown errors are assumed transient. */
export function isRetriable(e: unknown): boolean {
  if (OncelyError.is(e)) return e.retriable;
  return true;
}
