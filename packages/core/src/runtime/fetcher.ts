import { setMaxListeners } from 'node:events';
import { OncelyError, PartitionReadError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  type FetchedRecords,
  type FetchOutOfRange,
  type FetchRequest,
  type PartitionReader,
  recordSize,
} from '../reader/types.js';
import { backoff } from '../time.js';
import { traceFetch } from './tracing.js';

/** What the fetcher needs of a partition runner. */
export interface FetchTarget {
  readonly topic: string;
  readonly partition: number;
  /** Where to fetch next; undefined while the runner must decide. */
  readonly fetchPosition: bigint | undefined;
  /** Whether the runner has room for a fetched batch now. */
  wantsData(): boolean;
  deliver(result: FetchedRecords | FetchOutOfRange): void;
  /** The partition cannot be read at fetchPosition (no retry can fix it). */
  unreadable(error: PartitionReadError): void;
}

/** Options of a {@link Fetcher}. */
export interface FetcherOptions {
  /** The consumer group, for the fetch spans. */
  group: string;
  reader: PartitionReader;
  maxWaitMs: number;
  maxBytesPerPartition: number;
  logger: Logger;
  /**
   * Called with each partition's fetched records (not with out-of-range answers): how many, their
   * key and value bytes, and the time from the call to this partition's answer. For metrics.
   */
  onFetched?(info: FetchInfo): void;
  /** First back-off of a partition whose fetch failed; it doubles up to retryMaxMs. */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

/** One partition's answer to a fetch (event `fetch`). */
export interface FetchInfo {
  topic: string;
  partition: number;
  records: number;
  /** Key and value bytes of the records (headers not counted). */
  bytes: number;
  /** From the fetch call to this partition's answer, in ms (includes the broker's long poll). */
  durationMs: number;
}

/** A partition whose fetches fail: it waits alone, the others go on. */
interface Trouble {
  failures: number;
  retryAt: number;
  since: number;
}

const key = (t: { topic: string; partition: number }) => `${t.topic}:${t.partition}`;

/**
 * The worker's fetch loop. Every partition that wants data is fetched as soon as it does, unless
 * a fetch of it is in flight or it is backing off: a fetch that waits for one partition (its
 * leader is down, its broker slow) never holds back another. The reader delivers each partition's
 * result as soon as it has it (`onResult`) and merges the partitions of one broker into one
 * request, so the loop fires a call whenever partitions are ready without flooding the brokers.
 *
 * A partition whose fetch fails backs off alone (200 ms doubling to 10 s by default), with one
 * warning when it starts failing and one line when it reads again.
 */
export class Fetcher {
  /** Partitions with a fetch in flight, and which call it is (a settled call must not clear a later one's). */
  readonly #inflight = new Map<string, object>();
  readonly #trouble = new Map<string, Trouble>();
  readonly #calls = new Set<Promise<void>>();
  #woken = false;
  #wake: (() => void) | undefined;

  constructor(
    private readonly options: FetcherOptions,
    /** The partitions to fetch, by `topic:partition`; read on every round, so it may change. */
    private readonly targets: ReadonlyMap<string, FetchTarget>,
  ) {}

  /** When the partition's current run of failed fetches began (Date.now() ms), or undefined while it reads. */
  failingSince(topic: string, partition: number): number | undefined {
    return this.#trouble.get(key({ topic, partition }))?.since;
  }

  /** Makes the loop look again (a runner has room, a result came, the worker stops). */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /** Fetches until `signal` aborts (call wake() after aborting); resolves once every call settled. */
  async run(signal: AbortSignal): Promise<void> {
    // Each call in flight listens to the signal, and up to one call per partition may be in flight.
    setMaxListeners(0, signal);
    while (!signal.aborted) {
      this.#woken = false;
      const now = Date.now();
      let nextRetry = Number.POSITIVE_INFINITY;
      const ready: FetchTarget[] = [];
      for (const [k, t] of this.targets) {
        if (this.#inflight.has(k) || !t.wantsData()) continue;
        const trouble = this.#trouble.get(k);
        if (trouble && trouble.retryAt > now) {
          nextRetry = Math.min(nextRetry, trouble.retryAt);
          continue;
        }
        ready.push(t);
      }
      if (ready.length > 0) this.#launch(ready, signal);
      if (!this.#woken) await this.#idle(nextRetry - now);
    }
    await Promise.allSettled([...this.#calls]);
  }

  /**
   * Waits for wake() or until a backing-off partition may retry. No abort listener: stop aborts
   * the signal and calls wake() (one listener per wait would pile up on a long-running worker).
   */
  #idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => done(), Math.max(1, ms)) : undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
    });
  }

  #launch(targets: FetchTarget[], signal: AbortSignal): void {
    const { reader, maxWaitMs, maxBytesPerPartition } = this.options;
    const requests: FetchRequest[] = targets.map((t) => ({
      topic: t.topic,
      partition: t.partition,
      offset: t.fetchPosition!,
      maxBytes: maxBytesPerPartition,
    }));
    const keys = targets.map(key);
    const id = {};
    for (const k of keys) this.#inflight.set(k, id);
    const settled = new Set<string>();
    const release = (k: string) => {
      if (this.#inflight.get(k) === id) this.#inflight.delete(k);
    };
    const started = performance.now();
    // Undefined when nothing is traced (no SDK registered): the fetch then allocates nothing for it.
    const trace = traceFetch(this.options.group, requests);
    const { onFetched } = this.options;
    const onResult = (result: FetchedRecords | FetchOutOfRange) => {
      const k = key(result);
      if (settled.has(k)) return;
      settled.add(k);
      release(k);
      this.#recovered(k);
      const { topic, partition } = result;
      if (result.kind === 'records' && (onFetched || trace)) {
        let bytes = 0;
        for (const r of result.records) bytes += recordSize(r);
        const records = result.records.length;
        onFetched?.({ topic, partition, records, bytes, durationMs: performance.now() - started });
        trace?.answered(topic, partition, records, bytes);
      } else if (trace && result.kind === 'out-of-range') {
        trace.answered(topic, partition, 'out-of-range', 0);
      }
      this.targets.get(k)?.deliver(result);
      this.wake();
    };
    const failed: Array<{ k: string; error: Error }> = [];
    const onError = (error: OncelyError, r: FetchRequest) => {
      const k = key(r);
      if (settled.has(k)) return;
      settled.add(k);
      trace?.failed(r.topic, r.partition, error);
      failed.push({ k, error });
    };
    const call = reader
      .fetch(requests, { maxWaitMs, signal, onResult, onError })
      .then(
        // An adapter that does not call onResult still answers with every result.
        (results) => {
          for (const r of results) onResult(r);
        },
        (e: unknown) => {
          if (signal.aborted || OncelyError.is(e, 'ABORTED')) return;
          // Partitions the adapter said nothing about share the call's error.
          const error = toError(e);
          for (const [i, k] of keys.entries()) {
            if (settled.has(k)) continue;
            trace?.failed(requests[i]!.topic, requests[i]!.partition, error);
            failed.push({ k, error });
          }
          this.#failed(failed);
        },
      )
      .finally(() => {
        trace?.close();
        for (const k of keys) release(k);
        this.#calls.delete(call);
        this.wake();
      });
    this.#calls.add(call);
  }

  #failed(failed: Array<{ k: string; error: Error }>): void {
    const { logger, retryInitialMs = 200, retryMaxMs = 10_000 } = this.options;
    const now = Date.now();
    const started: Array<{ k: string; error: Error; delay: number }> = [];
    for (const { k, error } of failed) {
      const target = this.targets.get(k);
      if (error instanceof PartitionReadError && target && key(error) === k) {
        // No retry of ours can fix it: the runner stops this partition, the others go on.
        target.unreadable(error);
        continue;
      }
      const trouble = this.#trouble.get(k) ?? { failures: 0, retryAt: 0, since: now };
      trouble.failures++;
      const delay = backoff(trouble.failures, retryInitialMs, retryMaxMs);
      trouble.retryAt = now + delay;
      this.#trouble.set(k, trouble);
      if (trouble.failures === 1) started.push({ k, error, delay });
      else
        logger.debug('fetch failed again', { partition: k, attempt: trouble.failures, retryInMs: delay, error: error.message });
    }
    // One line per change of state (the partitions that just started failing), not one per retry.
    if (started.length > 0) {
      logger.warn('fetch failed; retrying', {
        partitions: started.map((s) => s.k).join(','),
        retryInMs: Math.max(...started.map((s) => s.delay)),
        error: started[0]!.error.message,
      });
    }
  }

  #recovered(k: string): void {
    const trouble = this.#trouble.get(k);
    if (!trouble) return;
    this.#trouble.delete(k);
    this.options.logger.info('fetch recovered', { partition: k, failures: trouble.failures, downMs: Date.now() - trouble.since });
  }
}
