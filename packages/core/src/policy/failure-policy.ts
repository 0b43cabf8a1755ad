import { OncelyError, type RecordFailedError } from '../errors.js';
import type { RawRecord } from '../reader/types.js';
import type { DeadLetter } from '../store/types.js';
import { backoff } from '../time.js';
import type { CompiledRetryPolicy } from './retry-policy.js';

/** Why a record went to the dead letters. */
export type DeadLetterReason = 'exhausted' | 'non-retriable' | 'decode' | 'crash';

/** What to do after a record failed: try it again after a delay, or give up on it. */
export type FailureVerdict =
  | { kind: 'retry'; delayMs: number }
  | { kind: 'stop-partition' }
  | { kind: 'dead-letter'; reason: DeadLetterReason };

/**
 * Decides the fate of a record that failed `tries` times, the first failure `elapsedMs` ago. A
 * record is set aside only on evidence that it is the cause: its error says it cannot succeed
 * (not retriable, a codec failure), or it used up its attempts or its time.
 */
export function judgeFailure(
  policy: CompiledRetryPolicy,
  error: RecordFailedError,
  tries: number,
  elapsedMs: number,
): FailureVerdict {
  const cause = error.cause;
  const nonRetriable = !error.retriable || (OncelyError.is(cause) && !cause.retriable);
  const outOfTime = policy.maxElapsedMs !== undefined && elapsedMs >= policy.maxElapsedMs;
  if (!nonRetriable && tries < policy.attempts && !outOfTime) {
    return { kind: 'retry', delayMs: backoff(tries, policy.initialDelayMs, policy.maxDelayMs) };
  }
  if (policy.onExhausted === 'stop-partition') return { kind: 'stop-partition' };
  const reason = OncelyError.is(cause, 'CODEC_FAILED')
    ? 'decode'
    : tries < policy.attempts && !error.retriable
      ? 'non-retriable'
      : 'exhausted';
  return { kind: 'dead-letter', reason };
}

/** The dead-letter row of a record that failed for good, with its last error. */
export function deadLetterOf(record: RawRecord, cause: Error, attempts: number, firstFailedAt: Date): DeadLetter {
  return {
    record,
    error: { name: cause.name, message: cause.message, code: (cause as { code?: string }).code, stack: cause.stack },
    attempts,
    firstFailedAt,
    lastFailedAt: new Date(),
  };
}
