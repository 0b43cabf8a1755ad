import type { OffsetSpec } from '../reader/types.js';

/** A worker's lifecycle. Illegal calls name the state they met. */
export type WorkerState = 'idle' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** Facts about one committed batch. */
export interface CommitInfo {
  topic: string;
  partition: number;
  fromOffset: bigint;
  nextOffset: bigint;
  records: number;
  epoch: bigint;
  /** Time from BEGIN to COMMIT (handler included), in ms. */
  durationMs: number;
  highWatermark: bigint;
}

/** Callbacks for metrics and tests. They must not throw (errors are logged and ignored). */
export interface WorkerHooks {
  onCommit?(info: CommitInfo): void;
  onFenced?(info: { topic: string; partition: number; epoch: bigint; action: 'reclaimed' | 'dropped' }): void;
  onRetry?(info: { topic: string; partition: number; fromOffset: bigint; attempt: number; delayMs: number; error: Error }): void;
  onOffsetOutOfRange?(info: { topic: string; partition: number; from: bigint; to: bigint; policy: OffsetSpec }): void;
  onStateChange?(state: WorkerState): void;
  /** A record was written to the dead letters (in the transaction that moved the offset past it). */
  onDeadLetter?(info: {
    topic: string;
    partition: number;
    offset: bigint;
    attempts: number;
    reason: 'exhausted' | 'non-retriable' | 'decode' | 'crash';
    error: Error;
  }): void;
  /** A partition stopped on a record whose retries were spent (onExhausted: 'stop-partition'). */
  onPartitionStopped?(info: { topic: string; partition: number; offset: bigint; error: Error }): void;
}

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
  /** Set when the partition stopped on a failing record (onExhausted: 'stop-partition'). */
  stopped?: { offset: bigint; error: string };
  committedBatches: number;
  committedRecords: number;
}
