/**
 * What happens when a record keeps failing. Retries run with exponential back-off and jitter; a
 * record that fails with NonRetriableError, a CodecError or any error whose `retriable` is false
 * skips them. Failures of the database itself (connection lost, lock timeout) never count.
 * A handler's policy (`retry` of its options) overrides the worker's field by field.
 */
export interface RetryPolicy {
  /**
   * Tries of a failing record, the first one included.
   * @default 5 (worker option retryAttempts)
   */
  attempts?: number;
  /**
   * Stop retrying once this many ms have passed since the record first failed.
   * @default no limit
   */
  maxElapsedMs?: number;
  /**
   * First back-off in ms; doubles up to maxDelayMs.
   * @default 250 (worker option retryInitialDelayMs)
   */
  initialDelayMs?: number;
  /**
   * Longest back-off in ms.
   * @default 30 000 (worker option retryMaxDelayMs)
   */
  maxDelayMs?: number;
  /**
   * When the retries are spent: `'dead-letter'` writes the record to the dead letters in the
   * transaction that moves the offset past it; `'stop-partition'` pauses the partition (the
   * others go on) until an operator acts.
   * @default 'dead-letter' (worker option onExhausted)
   */
  onExhausted?: 'dead-letter' | 'stop-partition';
  /**
   * The circuit breaker: after this many dead letters in a row on one partition, with no record
   * applied in between, the partition stops with CircuitOpenError (code CIRCUIT_OPEN) instead of
   * moving every record into the dead letters; 0 turns it off. Counted per worker process.
   * @default 10 (worker option maxConsecutiveDeadLetters)
   */
  maxConsecutiveDeadLetters?: number;
}

/** A {@link RetryPolicy} with every field decided. Frozen. */
export interface CompiledRetryPolicy {
  readonly attempts: number;
  readonly maxElapsedMs: number | undefined;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly onExhausted: 'dead-letter' | 'stop-partition';
  readonly maxConsecutiveDeadLetters: number;
}

/** Applies `policy` over `defaults` (the worker's compiled policy): a handler's own fields win. */
export function compileRetryPolicy(policy: RetryPolicy | undefined, defaults: CompiledRetryPolicy): CompiledRetryPolicy {
  return Object.freeze({
    attempts: policy?.attempts ?? defaults.attempts,
    maxElapsedMs: policy?.maxElapsedMs ?? defaults.maxElapsedMs,
    initialDelayMs: policy?.initialDelayMs ?? defaults.initialDelayMs,
    maxDelayMs: policy?.maxDelayMs ?? defaults.maxDelayMs,
    onExhausted: policy?.onExhausted ?? defaults.onExhausted,
    maxConsecutiveDeadLetters: policy?.maxConsecutiveDeadLetters ?? defaults.maxConsecutiveDeadLetters,
  });
}
