import { ConfigError } from '../errors.js';

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

/**
 * The longest delay a timer can wait: Node's setTimeout turns anything above 2^31-1 ms (about
 * 24.8 days) into 1 ms, so a back-off or timeout past it would not wait at all.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Checks a handler's `retry` option when the handler is defined (throws ConfigError naming the
 * topic and the field): a negative, fractional or absurd value would otherwise retry at once,
 * without end, or never.
 */
export function validateRetryPolicy(policy: RetryPolicy | undefined, topic: string): void {
  if (policy === undefined) return;
  const where = `Handler for '${topic}': retry`;
  if (policy === null || typeof policy !== 'object') {
    throw new ConfigError(
      `${where} must be an object such as { attempts: 5, maxDelayMs: 30_000 }; got ${JSON.stringify(policy)}`,
    );
  }
  const check = (name: keyof RetryPolicy, min: number, max: number) => {
    const value = policy[name];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(`${where}.${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(value)}`);
    }
  };
  check('attempts', 1, 1_000_000);
  check('maxElapsedMs', 0, Number.MAX_SAFE_INTEGER);
  check('initialDelayMs', 0, MAX_TIMER_MS);
  check('maxDelayMs', 0, MAX_TIMER_MS);
  check('maxConsecutiveDeadLetters', 0, 1_000_000);
  if (policy.initialDelayMs !== undefined && policy.maxDelayMs !== undefined && policy.maxDelayMs < policy.initialDelayMs) {
    throw new ConfigError(
      `${where}.maxDelayMs (${policy.maxDelayMs}) must not be below retry.initialDelayMs (${policy.initialDelayMs})`,
    );
  }
  if (policy.onExhausted !== undefined && policy.onExhausted !== 'dead-letter' && policy.onExhausted !== 'stop-partition') {
    throw new ConfigError(
      `${where}.onExhausted must be 'dead-letter' or 'stop-partition'; got ${JSON.stringify(policy.onExhausted)}`,
    );
  }
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
