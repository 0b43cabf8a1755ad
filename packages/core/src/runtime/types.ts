/** A worker's lifecycle. Illegal calls name the state they met. */
export type WorkerState = 'idle' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** Progress of one owned partition, for status lines and "caught up" checks. */
export interface PartitionProgress {
  topic: string;
  partition: number;
  /** Next offset to apply (committed position). */
  nextOffset: bigint;
  /** High watermark last seen by a fetch. */
  highWatermark: bigint | undefined;
  epoch: bigint;
  /** The position when this worker claimed the partition. */
  startOffset: bigint;
  /** For a bounded run (`until: 'caught-up'`): the high watermark taken at start, where it stops. */
  target: bigint | undefined;
  /** Whether a bounded run reached its target on this partition. */
  caughtUp: boolean;
  /**
   * Set when the partition stopped: where, why, and the error's code: CRASH_LOOP (a record that
   * kills the process, onCrashLoop: 'stop-partition'), CIRCUIT_OPEN (maxConsecutiveDeadLetters
   * dead letters in a row), CORRUPT_RECORD_BATCH or MESSAGE_FORMAT_UNSUPPORTED (an unreadable
   * batch), PARTITION_STOPPED (an error no retry fixes: the worker stops too), or the failing
   * record's own (HANDLER_FAILED when it has none; onExhausted: 'stop-partition').
   */
  stopped?: { offset: bigint; error: string; code: string };
  committedBatches: number;
  /** Records applied by the handler in committed batches (dead-lettered records are not counted here). */
  committedRecords: number;
  /** Records this worker wrote to the dead letters for this partition (each moved the position past it). */
  deadLetteredRecords: number;
  /**
   * Transient failures (the store unavailable, a lock timeout, a serialization failure) this
   * partition met and retried since the worker claimed it; none of them cost a record's retries.
   */
  transientErrors: number;
  /**
   * How long the batch transaction in flight has been open, in ms; absent between batches. A value
   * that keeps growing is a handler that does not settle (see slowBatchWarningMs).
   */
  batchRunningMs?: number;
  /**
   * How long this partition's fetches have been failing, in ms (the broker unreachable, no leader):
   * from the first failure of the current run of failures; absent while it reads. The high
   * watermark, and so the lag, is then as old as the last fetch that answered.
   */
  fetchFailingMs?: number;
}
