import { toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DeadLetterReason } from '../policy/failure-policy.js';
import type { OffsetSpec } from '../reader/types.js';
import type { FetchInfo } from './fetcher.js';
import type { WorkerState } from './types.js';

/** Facts about one committed batch (event `commit`). */
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

/**
 * What a worker emits, by event name: `worker.on('commit', (info) => …)`. Metrics, the Kafka
 * offset mirror, tracing and a user's own instrumentation are all listeners of these.
 */
export interface WorkerEventMap {
  /** A batch committed (its writes and the advance of its offset). */
  commit: CommitInfo;
  /**
   * The claim was found stale: re-claimed at the stored position (a rewind) or dropped (a
   * takeover). `detectedBy`: `commit` when a batch's transaction was refused (rolled back, nothing
   * of it written: a late commit of a paused or slow worker), `renewal` when the lease renewal
   * found the claim gone first, `release` when the release of a hand-off or a stop found it gone
   * (the store released nothing: no `release` event then).
   */
  fenced: {
    topic: string;
    partition: number;
    epoch: bigint;
    action: 'reclaimed' | 'dropped';
    detectedBy: 'commit' | 'renewal' | 'release';
  };
  /** A batch or record is retried after a failure (a failing record, or the store being unavailable). */
  retry: { topic: string; partition: number; fromOffset: bigint; attempt: number; delayMs: number; error: Error };
  /** A record was written to the dead letters, in the transaction that moved the offset past it. */
  'dead-letter': { topic: string; partition: number; offset: bigint; attempts: number; reason: DeadLetterReason; error: Error };
  /**
   * A partition stopped: on a record whose retries were spent (onExhausted: 'stop-partition'), on
   * a record that kills the process (WorkerCrashedError, code CRASH_LOOP; onCrashLoop:
   * 'stop-partition'), after maxConsecutiveDeadLetters dead letters in a row (CircuitOpenError,
   * code CIRCUIT_OPEN), or on a record batch that cannot be read (PartitionReadError: damaged,
   * unsupported format). `error.code` says which; progress() shows it as `stopped`.
   */
  'partition-stopped': { topic: string; partition: number; offset: bigint; error: Error };
  /** The stored offset was out of the log and moved as offsetOutOfRange says. */
  'out-of-range': { topic: string; partition: number; from: bigint; to: bigint; policy: OffsetSpec };
  /** A partition's fetched records arrived (how many, their key and value bytes, the time the fetch took). */
  fetch: FetchInfo;
  /** The worker's lifecycle state changed. */
  state: WorkerState;
  /** The worker took a partition (at start, when it became free or targeted, or again after a rewind). */
  claim: { topic: string; partition: number; epoch: bigint; nextOffset: bigint };
  /**
   * The worker gave a partition up: while stopping, or handed off to the worker that targets it
   * now. Only when the store released the claim: a claim that was no longer current (taken over,
   * rewound) is reported as `fenced` (`dropped`, detectedBy `release`) instead.
   */
  release: { topic: string; partition: number; epoch: bigint; reason: 'handoff' | 'stop' };
}

/** An event name of {@link WorkerEventMap}. */
export type WorkerEvent = keyof WorkerEventMap;

/** A listener of event `E`; a returned promise is not awaited (a rejection is logged). */
export type WorkerListener<E extends WorkerEvent> = (payload: WorkerEventMap[E]) => unknown;

/**
 * A typed event emitter that never lets a listener hurt the worker: a listener that throws or
 * rejects is logged and the others still run. Listeners run synchronously at the emit, in the
 * order they were added, so a slow listener slows the worker: do real work asynchronously.
 */
export class WorkerEvents {
  readonly #listeners = new Map<WorkerEvent, Set<WorkerListener<never>>>();

  constructor(private readonly log: Logger) {}

  /** Adds a listener; returns a function that removes it. */
  on<E extends WorkerEvent>(event: E, listener: WorkerListener<E>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as WorkerListener<never>);
    return () => this.off(event, listener);
  }

  /** Removes a listener added with {@link on}. */
  off<E extends WorkerEvent>(event: E, listener: WorkerListener<E>): void {
    this.#listeners.get(event)?.delete(listener as WorkerListener<never>);
  }

  /** Whether any listener listens to `event` (to skip building a payload nobody reads). */
  listening(event: WorkerEvent): boolean {
    return (this.#listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends WorkerEvent>(event: E, payload: WorkerEventMap[E]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    for (const listener of [...set]) {
      try {
        const result = (listener as WorkerListener<E>)(payload);
        // Any thenable, not only this realm's Promise: a rejected promise of a promise library or
        // of a vm context would otherwise be an unhandled rejection, which ends a Node process.
        if (isThenable(result)) Promise.resolve(result).catch((e: unknown) => this.#failed(event, e));
      } catch (e) {
        this.#failed(event, e);
      }
    }
  }

  #failed(event: WorkerEvent, e: unknown): void {
    try {
      this.log.warn('a worker event listener failed; ignored', { event, error: toError(e).message });
    } catch {
      // a broken logger must not break the worker either
    }
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  if ((typeof v !== 'object' && typeof v !== 'function') || v === null) return false;
  try {
    return typeof (v as { then?: unknown }).then === 'function';
  } catch {
    return false; // a `then` getter that throws: not a promise we can observe
  }
}
