import type { App } from '../app/define-app.js';
import type { HandlerContext, HandlerDefinition } from '../app/types.js';
import { AbortedError, FencedError, OffsetOutOfRangeError, toError } from '../errors.js';
import type { FetchedRecords, FetchOutOfRange, RawRecord } from '../kafka/types.js';
import type { Logger } from '../logger.js';
import type { BatchRange, Claim } from '../store/types.js';
import { decodeRecords, invokeHandler } from './handler-invoker.js';
import type { CompiledWorkerOptions } from './options.js';
import type { PartitionProgress } from './types.js';
import { backoff, sleep } from './util.js';

/** What the fetcher hands a runner; 'revalidate' asks it to re-check ownership (lease lost, rewound). */
type Item = FetchedRecords | FetchOutOfRange | { kind: 'revalidate' };

/** How a runner ended. */
export type RunnerExit = 'stopped' | 'dropped' | 'caught-up';

/** How many fetched batches may wait per partition: one in the transaction, one prefetched. */
const PREFETCH = 2;

/**
 * Applies one owned partition in order: takes fetched batches, cuts them into transactions
 * bounded by count and bytes, runs the handler and the offset compare-and-set in one transaction,
 * retries a failing batch with back-off (never moving past it), and re-checks ownership when
 * fenced: a rewind is re-claimed at the new position, a takeover drops the partition.
 */
export class PartitionRunner<Tx> {
  readonly topic: string;
  readonly partition: number;
  claim: Claim;
  /** Where the fetcher reads next; undefined while the runner must decide (out of range, revalidation). */
  fetchPosition: bigint | undefined;
  highWatermark: bigint | undefined;
  committedBatches = 0;
  committedRecords = 0;
  readonly startOffset: bigint;
  /** A bounded run stops here (records at or past it are left alone). */
  stopAt: bigint | undefined;

  readonly #queue: Item[] = [];
  #wake: (() => void) | undefined;
  #stopping = false;
  readonly #abort = new AbortController();
  readonly #def: HandlerDefinition<Tx>;
  readonly #log: Logger;

  constructor(
    readonly app: App<Tx>,
    readonly options: CompiledWorkerOptions<Tx>,
    claim: Claim,
    private readonly notifyFetcher: () => void,
  ) {
    this.topic = claim.topic;
    this.partition = claim.partition;
    this.claim = claim;
    this.fetchPosition = claim.nextOffset;
    this.startOffset = claim.nextOffset;
    this.#def = app.handlerFor(claim.topic)!;
    this.#log = options.logger.child({ topic: claim.topic, partition: claim.partition });
  }

  /** Whether the fetcher should fetch this partition now. */
  wantsData(): boolean {
    if (this.#stopping || this.fetchPosition === undefined || this.#queue.length >= PREFETCH) return false;
    return this.stopAt === undefined || this.fetchPosition < this.stopAt;
  }

  /** Whether a bounded run has applied everything up to its target. */
  get caughtUp(): boolean {
    return this.stopAt !== undefined && this.claim.nextOffset >= this.stopAt;
  }

  /** Delivers a fetch result (ignored when the position moved since the fetch was sent). */
  deliver(result: FetchedRecords | FetchOutOfRange): void {
    if (this.#stopping || result.fetchOffset !== this.fetchPosition) return;
    if (result.kind === 'out-of-range') {
      this.fetchPosition = undefined;
      this.#push(result);
      return;
    }
    this.highWatermark = result.highWatermark;
    if (this.stopAt !== undefined && result.nextOffset > this.stopAt) {
      // A bounded run applies exactly up to its target: later records wait for the next run.
      const stopAt = this.stopAt;
      result = { ...result, records: result.records.filter((r) => r.offset < stopAt), nextOffset: stopAt };
    }
    if (result.records.length === 0 && result.nextOffset === result.fetchOffset) return;
    this.fetchPosition = result.nextOffset;
    this.#push(result);
  }

  /** Asks the runner to re-check its claim (the lease renewal found it lost). */
  revalidate(): void {
    this.fetchPosition = undefined;
    this.#queue.length = 0;
    this.#push({ kind: 'revalidate' });
  }

  /** Stops after the in-flight transaction (drain). */
  stop(): void {
    this.#stopping = true;
    this.#wake?.();
  }

  /** Stops now: the in-flight transaction is rolled back, the handler's signal aborts. */
  abort(): void {
    this.stop();
    this.#abort.abort(new AbortedError());
  }

  progress(): PartitionProgress {
    return {
      topic: this.topic,
      partition: this.partition,
      nextOffset: this.claim.nextOffset,
      highWatermark: this.highWatermark,
      epoch: this.claim.epoch,
      startOffset: this.startOffset,
      target: this.stopAt,
      caughtUp: this.caughtUp,
      committedBatches: this.committedBatches,
      committedRecords: this.committedRecords,
    };
  }

  /** Runs until stopped or dropped; throws only for fatal errors (out of range under 'fail'). */
  async run(): Promise<RunnerExit> {
    while (!this.#stopping) {
      if (this.caughtUp) return 'caught-up';
      const item = await this.#next();
      if (!item) break;
      if (item.kind === 'revalidate') {
        if ((await this.#onFenced()) === 'dropped') return 'dropped';
        continue;
      }
      if (item.fetchOffset !== this.claim.nextOffset) continue; // fetched before a re-claim moved us
      const outcome = item.kind === 'out-of-range' ? await this.#outOfRange(item) : await this.#apply(await this.#linger(item));
      if (outcome === 'fenced' && (await this.#onFenced()) === 'dropped') return 'dropped';
    }
    return 'stopped';
  }

  #push(item: Item): void {
    this.#queue.push(item);
    this.#wake?.();
  }

  async #next(): Promise<Item | undefined> {
    while (this.#queue.length === 0) {
      if (this.#stopping) return undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
    if (this.#stopping) return undefined;
    const item = this.#queue.shift()!;
    this.notifyFetcher();
    return item;
  }

  /** With batchLingerMs, merges the next contiguous fetch into a batch that is not yet full. */
  async #linger(first: FetchedRecords): Promise<FetchedRecords> {
    let batch = first;
    const deadline = Date.now() + this.options.batchLingerMs;
    while (this.options.batchLingerMs > 0 && batch.records.length < this.options.batchMaxRecords && !this.#stopping) {
      const next = this.#queue[0];
      if (next && next.kind === 'records' && next.fetchOffset === batch.nextOffset) {
        this.#queue.shift();
        this.notifyFetcher();
        batch = { ...next, fetchOffset: batch.fetchOffset, records: [...batch.records, ...next.records] };
        continue;
      }
      if (next || Date.now() >= deadline) break;
      await Promise.race([sleep(deadline - Date.now()), new Promise<void>((r) => (this.#wake = r))]);
      this.#wake = undefined;
    }
    return batch;
  }

  /** Applies a fetched batch as one or more transactions. */
  async #apply(fetched: FetchedRecords): Promise<'ok' | 'fenced' | 'stopped'> {
    const { records } = fetched;
    if (records.length === 0) {
      // Only control records or gaps: still move the position, so lag can reach 0.
      return this.#commitChunk(
        [],
        { fetchedFrom: fetched.fetchOffset, nextOffset: fetched.nextOffset, recordCount: 0 },
        fetched.highWatermark,
      );
    }
    let start = 0;
    while (start < records.length) {
      // Draining finishes the in-flight transaction only, not the rest of the fetched batch.
      if (this.#stopping) return 'stopped';
      let end = start;
      let bytes = 0;
      while (end < records.length && end - start < this.options.batchMaxRecords) {
        const r = records[end]!;
        const size = (r.value?.length ?? 0) + (r.key?.length ?? 0);
        if (end > start && bytes + size > this.options.batchMaxBytes) break;
        bytes += size;
        end++;
      }
      const chunk = records.slice(start, end);
      const last = end === records.length;
      const range: BatchRange = {
        fetchedFrom: this.claim.nextOffset,
        // The last chunk takes the fetch's nextOffset, which may skip control records after it.
        nextOffset: last ? fetched.nextOffset : chunk[chunk.length - 1]!.offset + 1n,
        recordCount: chunk.length,
      };
      const outcome = await this.#commitChunk(chunk, range, fetched.highWatermark);
      if (outcome !== 'ok') return outcome;
      start = end;
    }
    return 'ok';
  }

  /** One transaction, retried with back-off until it commits, is fenced, or the worker stops. */
  async #commitChunk(chunk: RawRecord[], range: BatchRange, highWatermark: bigint): Promise<'ok' | 'fenced' | 'stopped'> {
    const { store, hooks } = this.options;
    for (let attempt = 1; ; attempt++) {
      if (this.#abort.signal.aborted) return 'stopped';
      const started = performance.now();
      try {
        const claim = this.claim;
        await store.runBatch(claim, range, (tx) => this.#runHandler(tx, chunk, attempt, highWatermark), {
          signal: this.#abort.signal,
        });
        claim.nextOffset = range.nextOffset;
        if (claim.highestCommitted === null || range.nextOffset > claim.highestCommitted)
          claim.highestCommitted = range.nextOffset;
        this.committedBatches++;
        this.committedRecords += range.recordCount;
        safe(this.#log, () =>
          hooks.onCommit?.({
            topic: this.topic,
            partition: this.partition,
            fromOffset: range.fetchedFrom,
            nextOffset: range.nextOffset,
            records: range.recordCount,
            epoch: claim.epoch,
            durationMs: performance.now() - started,
            highWatermark,
          }),
        );
        return 'ok';
      } catch (e) {
        if (e instanceof FencedError) return 'fenced';
        if (this.#abort.signal.aborted) return 'stopped';
        const error = toError(e);
        const delayMs = backoff(attempt, this.options.retryInitialDelayMs, this.options.retryMaxDelayMs);
        this.#log.warn('batch failed; rolled back, will retry', {
          from: range.fetchedFrom,
          records: range.recordCount,
          attempt,
          retryInMs: delayMs,
          error: error.message,
        });
        safe(this.#log, () =>
          hooks.onRetry?.({
            topic: this.topic,
            partition: this.partition,
            fromOffset: range.fetchedFrom,
            attempt,
            delayMs,
            error,
          }),
        );
        if (this.#stopping) return 'stopped'; // draining: leave the failing batch for the next run
        await sleep(delayMs, this.#abort.signal);
        if (this.#stopping) return 'stopped';
      }
    }
  }

  async #runHandler(tx: Tx, chunk: RawRecord[], attempt: number, highWatermark: bigint): Promise<void> {
    if (chunk.length === 0) return;
    const messages = decodeRecords(this.#def, this.topic, this.partition, chunk);
    const hc = this.claim.highestCommitted;
    const ctx: HandlerContext<Tx> = {
      tx,
      signal: this.#abort.signal,
      logger: this.#log,
      isReplay: hc !== null && chunk[0]!.offset < hc,
      group: this.app.group,
      workerId: this.options.workerId,
      attempt,
    };
    await invokeHandler(
      this.#def,
      this.app.container,
      { topic: this.topic, partition: this.partition, messages, highWatermark },
      ctx,
      hc,
    );
  }

  /** Applies the out-of-range policy: fail loudly, or move with a warning through the fenced CAS. */
  async #outOfRange(item: FetchOutOfRange): Promise<'ok' | 'fenced' | 'stopped'> {
    const policy = this.options.offsetOutOfRange;
    if (policy === 'fail') {
      throw new OffsetOutOfRangeError(this.topic, this.partition, item.fetchOffset, item.logStartOffset, item.highWatermark);
    }
    const target = (await this.options.reader.resolveOffsets(this.topic, [this.partition], policy)).get(this.partition);
    if (target === undefined)
      throw new OffsetOutOfRangeError(this.topic, this.partition, item.fetchOffset, item.logStartOffset, item.highWatermark);
    this.#log.warn(`stored offset is out of range; moving to ${policy} as offsetOutOfRange says`, {
      from: item.fetchOffset,
      to: target,
      logStart: item.logStartOffset,
      highWatermark: item.highWatermark,
      skippedRecords: target > item.fetchOffset ? target - item.fetchOffset : 0n,
    });
    safe(this.#log, () =>
      this.options.hooks.onOffsetOutOfRange?.({
        topic: this.topic,
        partition: this.partition,
        from: item.fetchOffset,
        to: target,
        policy,
      }),
    );
    const outcome = await this.#commitChunk(
      [],
      { fetchedFrom: item.fetchOffset, nextOffset: target, recordCount: 0 },
      item.highWatermark ?? target,
    );
    if (outcome === 'ok') {
      this.fetchPosition = target;
      this.notifyFetcher();
    }
    return outcome;
  }

  /** After a fence: re-claim when we are still the owner (an operator rewound), else drop. */
  async #onFenced(): Promise<'reclaimed' | 'dropped'> {
    const { store, hooks, workerId, leaseMs } = this.options;
    const fencedEpoch = this.claim.epoch;
    this.#queue.length = 0;
    this.fetchPosition = undefined;
    const state = await store.position?.(this.claim).catch((e) => {
      this.#log.warn('could not read the partition after a fence; dropping it', { error: toError(e).message });
      return null;
    });
    if (!state || state.owner !== workerId || this.#stopping) {
      this.#log.warn('partition taken over by another worker; dropped', { epoch: fencedEpoch, owner: state?.owner ?? null });
      safe(this.#log, () =>
        hooks.onFenced?.({ topic: this.topic, partition: this.partition, epoch: fencedEpoch, action: 'dropped' }),
      );
      this.#stopping = true;
      return 'dropped';
    }
    this.claim = await store.claim({ ...this.claim, workerId, initialOffset: state.nextOffset, leaseMs });
    this.fetchPosition = this.claim.nextOffset;
    this.#log.info('partition moved under us (rewound); re-claimed at the stored position', {
      epoch: this.claim.epoch,
      nextOffset: this.claim.nextOffset,
    });
    safe(this.#log, () =>
      hooks.onFenced?.({ topic: this.topic, partition: this.partition, epoch: fencedEpoch, action: 'reclaimed' }),
    );
    this.notifyFetcher();
    return 'reclaimed';
  }
}

function safe(log: Logger, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    log.warn('a worker hook threw; ignored', { error: toError(e).message });
  }
}
