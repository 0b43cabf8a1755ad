import type { App } from '../app/define-app.js';
import type { HandlerContext, HandlerDefinition } from '../app/types.js';
import {
  AbortedError,
  CircuitOpenError,
  markLogged,
  OffsetOutOfRangeError,
  OncelyError,
  type PartitionReadError,
  PartitionStoppedError,
  RecordFailedError,
  toError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { classifyError, type ErrorSource } from '../policy/classify.js';
import { crashLoopError, planSuspect, SuspectGate } from '../policy/crash-budget.js';
import { type DeadLetterReason, deadLetterOf, judgeFailure } from '../policy/failure-policy.js';
import { type CompiledRetryPolicy, compileRetryPolicy } from '../policy/retry-policy.js';
import type { FetchedRecords, FetchOutOfRange, RawRecord } from '../reader/types.js';
import type { BatchRange, Claim, CrashEvidence, DeadLetter, OffsetRange } from '../store/types.js';
import { backoff, sleep } from '../time.js';
import type { WorkerEvents } from './events.js';
import { decodeRecords, invokeHandler } from './handler-invoker.js';
import { cutBatch, Mailbox, type MailboxItem, rangeEnd } from './mailbox.js';
import type { CompiledWorkerOptions } from './options.js';
import { SlowBatchWatch } from './slow-batch.js';
import { type BatchTrace, traceBatch } from './tracing.js';
import type { PartitionProgress } from './types.js';

/** What a runner needs of the worker's compiled options. */
export type RunnerOptions<Tx> = Pick<
  CompiledWorkerOptions<Tx>,
  | 'store'
  | 'reader'
  | 'logger'
  | 'workerId'
  | 'leaseMs'
  | 'batchMaxRecords'
  | 'batchMaxBytes'
  | 'batchLingerMs'
  | 'offsetOutOfRange'
  | 'retry'
  | 'slowBatchWarningMs'
  | 'crashBudget'
  | 'onCrashLoop'
>;

/** How a runner ended. */
export type RunnerExit = 'stopped' | 'dropped' | 'caught-up';

/** How applying a piece of a batch went. */
type Outcome = 'ok' | 'fenced' | 'stopped' | 'paused';

/** How many fetched batches may wait per partition: one in the transaction, one prefetched. */
const PREFETCH = 2;

/** While a transient failure lasts, the log says it still does this often (and at each change of cause). */
const STILL_FAILING_LOG_MS = 60_000;

/** What kind of failure an error is, for the log: its oncely code and the driver's code underneath. */
function failureKind(e: unknown): string {
  const codes: string[] = [];
  let current = e;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') codes.push(String(code));
    current = (current as { cause?: unknown }).cause;
  }
  return codes.join('/') || toError(e).name;
}

/**
 * Transient failures of one partition (the store unavailable, a lock timeout, a serialization
 * failure): retried with back-off for as long as they last, counted, and logged once per change of
 * state (failing, a different cause, recovered) and every STILL_FAILING_LOG_MS while they last,
 * never once per attempt and never not at all.
 */
export class TransientFailures {
  /** Every transient failure of the partition since the runner started. */
  count = 0;
  #since: number | undefined;
  #attempts = 0;
  #kind: string | undefined;
  #loggedAt = 0;

  constructor(private readonly log: Logger) {}

  failed(what: string, e: unknown, attempt: number, retryInMs: number, fields: Record<string, unknown> = {}): void {
    this.count++;
    this.#attempts++;
    const now = Date.now();
    const kind = failureKind(e);
    const error = toError(e).message;
    if (this.#since === undefined || kind !== this.#kind) {
      this.#since ??= now;
      this.#kind = kind;
      this.#loggedAt = now;
      this.log.warn(`${what}; retrying`, { ...fields, attempt, retryInMs, code: kind, error });
    } else if (now - this.#loggedAt >= STILL_FAILING_LOG_MS) {
      this.#loggedAt = now;
      this.log.error(`${what}; still retrying`, {
        ...fields,
        attempts: this.#attempts,
        failingForMs: now - this.#since,
        retryInMs,
        code: kind,
        error,
      });
    }
  }

  recovered(): void {
    if (this.#since === undefined) return;
    this.log.info('recovered: retried until it passed', { attempts: this.#attempts, failedForMs: Date.now() - this.#since });
    this.#since = undefined;
    this.#attempts = 0;
    this.#kind = undefined;
  }
}

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
  /** Set when the partition stopped (a failing record, a crash loop, the circuit breaker, an unreadable batch, a systemic error). */
  stoppedOn: { offset: bigint; error: string; code: string } | undefined;
  deadLettered = 0;
  /** Dead letters since the last commit that applied a record (the circuit breaker). */
  #deadLettersInARow = 0;
  /** The ranges below highestCommitted that the group applied before, as of `claim` (a new claim reloads). */
  #applied: { claim: Claim; ranges: readonly OffsetRange[] } | undefined;
  /**
   * After an unclean hand-over: the crash evidence at the position (undefined: none yet). The
   * runner leaves this mode once a transaction outside the narrowing commits (see crash-budget.ts).
   */
  #suspect: { pending: CrashEvidence | undefined } | undefined;
  /** Held while this runner narrows a range in flight at repeated deaths: the worker's other transactions wait. */
  #reservation: (() => void) | undefined;
  readonly #transients: TransientFailures;
  readonly #slow: SlowBatchWatch;

  readonly #mailbox: Mailbox;
  #stopping = false;
  /**
   * The lease renewal found the claim lost (revalidate()) and the runner has not re-checked it
   * since: a runner that stops first (a hand-off, the worker's stop) never reads that request, so
   * run() does the re-check on its way out (see #exitStopped).
   */
  #recheck = false;
  readonly #abort = new AbortController();
  /** Aborted by stop() too: a back-off ends there (each is followed by a check of #stopping). */
  readonly #stopped = new AbortController();
  readonly #backoffEnds = AbortSignal.any([this.#abort.signal, this.#stopped.signal]);
  readonly #def: HandlerDefinition<Tx>;
  readonly #log: Logger;
  readonly #retry: CompiledRetryPolicy;

  constructor(
    readonly app: App<Tx>,
    readonly options: RunnerOptions<Tx>,
    claim: Claim,
    private readonly notifyFetcher: () => void,
    /** Where the runner reports commits, retries, dead letters and fences. */
    readonly events: WorkerEvents,
    /** Shared by the worker's runners: a range in flight at repeated deaths is narrowed alone in the worker. */
    readonly suspectGate: SuspectGate = new SuspectGate(),
  ) {
    this.topic = claim.topic;
    this.partition = claim.partition;
    this.claim = claim;
    this.fetchPosition = claim.nextOffset;
    this.startOffset = claim.nextOffset;
    this.#def = app.handlerFor(claim.topic)!;
    this.#log = options.logger.child({ topic: claim.topic, partition: claim.partition });
    this.#retry = compileRetryPolicy(this.#def.retry, options.retry);
    this.#suspect = this.#suspectOf(claim);
    this.#mailbox = new Mailbox(notifyFetcher);
    this.#transients = new TransientFailures(this.#log);
    this.#slow = new SlowBatchWatch(this.#log, options.slowBatchWarningMs);
    this.#syncGate();
  }

  /** Whether the fetcher should fetch this partition now. */
  wantsData(): boolean {
    if (this.#stopping || this.fetchPosition === undefined || this.#mailbox.size >= PREFETCH) return false;
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
      this.#mailbox.push(result);
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
    this.#mailbox.push(result);
  }

  /**
   * The fetcher could not read this partition at fetchPosition: the runner applies what was fetched
   * before it, then stops the partition (claim kept, position unchanged) until the worker stops.
   */
  unreadable(error: PartitionReadError): void {
    if (this.#stopping || this.fetchPosition === undefined) return;
    this.fetchPosition = undefined;
    this.#mailbox.push({ kind: 'unreadable', error });
  }

  /** Asks the runner to re-check its claim (the lease renewal found it lost). */
  revalidate(): void {
    this.#recheck = true;
    this.fetchPosition = undefined;
    this.#mailbox.clear();
    this.#mailbox.push({ kind: 'revalidate' });
  }

  /** Stops after the in-flight transaction (drain). */
  stop(): void {
    this.#stopping = true;
    // A runner waiting out a back-off (a store outage, a busy record) stops now, not after it.
    this.#stopped.abort();
    this.#syncGate();
    this.#mailbox.wake();
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
      ...(this.stoppedOn ? { stopped: { ...this.stoppedOn } } : {}),
      committedBatches: this.committedBatches,
      committedRecords: this.committedRecords,
      deadLetteredRecords: this.deadLettered,
      transientErrors: this.#transients.count,
      ...(this.#slow.runningMs() === undefined ? {} : { batchRunningMs: this.#slow.runningMs() }),
    };
  }

  /**
   * Runs until stopped or dropped; throws only for fatal errors: PARTITION_STOPPED (an error no
   * retry fixes, see classifyError), TRANSACTION_ENDED, out of range under 'fail'.
   */
  async run(): Promise<RunnerExit> {
    try {
      const exit = await this.#run();
      return exit === 'stopped' ? await this.#exitStopped() : exit;
    } catch (e) {
      // A store call cut short by the stop: a clean end, not a failure.
      if (this.#stopping && OncelyError.is(e, 'ABORTED')) return this.#exitStopped();
      if (
        OncelyError.is(e, 'PARTITION_STOPPED') ||
        OncelyError.is(e, 'TRANSACTION_ENDED') ||
        OncelyError.is(e, 'OFFSET_OUT_OF_RANGE')
      )
        throw e;
      // Anything else that escaped (a store call outside a batch: the applied ranges, a re-claim)
      // stops as loudly, with what to do.
      throw await this.#stopSystemic(e, 'oncely');
    } finally {
      this.#reservation?.();
      this.#reservation = undefined;
    }
  }

  async #run(): Promise<RunnerExit> {
    while (!this.#stopping) {
      if (this.caughtUp) return 'caught-up';
      const item = await this.#next();
      if (!item) break;
      if (item.kind === 'revalidate') {
        if ((await this.#onFenced('renewal')) === 'dropped') return 'dropped';
        continue;
      }
      if (item.kind === 'unreadable') {
        await this.#stopUnreadable(item.error);
        while (!this.#stopping) await this.#next();
        return 'stopped';
      }
      if (item.fetchOffset !== this.claim.nextOffset) continue; // fetched before a re-claim moved us
      const outcome =
        item.kind === 'out-of-range'
          ? await this.#outOfRange(item)
          : await this.#apply(
              await this.#mailbox.linger(item, this.options.batchLingerMs, this.options.batchMaxRecords, () => this.#stopping),
            );
      if (outcome === 'fenced' && (await this.#onFenced('commit')) === 'dropped') return 'dropped';
      if (outcome === 'stopped' && !this.#stopping) {
        // 'stopped' means the worker stops; anything else that ends up here must not stall in silence.
        throw await this.#stopSystemic(new Error('a batch ended without committing while the worker was not stopping'), 'oncely');
      }
      if (outcome === 'paused') {
        // Stopped on a failing record: hold the claim, fetch nothing, wait for the worker to stop.
        while (!this.#stopping) await this.#next();
        return 'stopped';
      }
    }
    return 'stopped';
  }

  /** Holds the worker's gate while (and only while) this runner narrows a range in flight at repeated deaths. */
  #syncGate(): void {
    const narrowing =
      (this.#suspect?.pending?.deaths ?? 0) >= 2 && !this.#stopping && !this.stoppedOn && !!this.options.store.recordInFlight;
    if (narrowing && !this.#reservation) this.#reservation = this.suspectGate.reserve();
    else if (!narrowing && this.#reservation) {
      this.#reservation();
      this.#reservation = undefined;
    }
  }

  /** A suspect claim's crash mode; evidence written at another position (before a rewind) does not count. */
  #suspectOf(claim: Claim): { pending: CrashEvidence | undefined } | undefined {
    if (!claim.suspect) return undefined;
    return { pending: claim.crash?.from === claim.nextOffset ? claim.crash : undefined };
  }

  async #stopUnreadable(error: PartitionReadError): Promise<void> {
    const offset = this.claim.nextOffset;
    const stop = { offset, error: error.message, code: error.code };
    this.fetchPosition = undefined;
    this.#mailbox.clear();
    this.#log.error('partition stopped: a fetched record batch cannot be read. The other partitions go on.', {
      offset,
      code: error.code,
      error: error.message,
    });
    await this.#recordStop(stop);
    // progress() and the event together, so whoever sees one sees the other.
    this.stoppedOn = stop;
    this.#syncGate();
    this.events.emit('partition-stopped', { topic: this.topic, partition: this.partition, offset, error });
  }

  /**
   * Records the stop in the store (before the event: a bounded run may end on it and release the
   * claim, after which the fenced update would no longer match). Only for operators to see: a
   * failure is logged, the partition stays stopped either way.
   */
  async #recordStop(stop = this.stoppedOn): Promise<void> {
    const { store } = this.options;
    if (!store.markStopped || !stop) return;
    try {
      await store.markStopped(this.claim, stop);
    } catch (e) {
      this.#log.warn('could not record the stop in the store (oncely status will not show it)', { error: toError(e).message });
    }
  }

  #next(): Promise<MailboxItem | undefined> {
    return this.#mailbox.next(() => this.#stopping);
  }

  /** Applies a fetched batch as one or more transactions, isolating records that fail. */
  async #apply(fetched: FetchedRecords): Promise<Outcome> {
    const { records } = fetched;
    const hw = fetched.highWatermark;
    const endOf = (j: number) => rangeEnd(fetched, j);
    if (records.length === 0) {
      // Only control records or gaps: still move the position, so lag can reach 0.
      const result = await this.#commit(
        [],
        { fetchedFrom: this.claim.nextOffset, nextOffset: fetched.nextOffset, recordCount: 0 },
        hw,
      );
      return result instanceof RecordFailedError ? 'stopped' : result;
    }
    await this.#loadApplied(records[0]!.offset);
    let i = 0;
    while (i < records.length) {
      // Draining finishes the in-flight transaction only, not the rest of the fetched batch.
      if (this.#stopping) return 'stopped';
      if (this.#suspect && this.options.store.recordInFlight) {
        const { outcome, next } = await this.#applySuspect(records, i, endOf, hw);
        if (outcome !== 'ok') return outcome;
        i = next;
        continue;
      }
      const j = cutBatch(records, i, this.options.batchMaxRecords, this.options.batchMaxBytes);
      const release = await this.suspectGate.shared();
      let outcome: Outcome;
      try {
        outcome = this.#stopping ? 'stopped' : await this.#applyRange(records, i, j, endOf, hw);
      } finally {
        release();
      }
      if (outcome !== 'ok') return outcome;
      i = j;
    }
    return 'ok';
  }

  /**
   * Applies records[i..j) in one transaction. When a record fails, the good records around it still
   * commit: a message handler names the failing record, so the records before it commit, it is
   * retried alone, and the rest follows; a batch handler's batch is bisected until the failing
   * record stands alone.
   */
  async #applyRange(records: RawRecord[], i: number, j: number, endOf: (j: number) => bigint, hw: bigint): Promise<Outcome> {
    const chunk = records.slice(i, j);
    const result = await this.#commit(
      chunk,
      { fetchedFrom: this.claim.nextOffset, nextOffset: endOf(j), recordCount: chunk.length },
      hw,
    );
    if (!(result instanceof RecordFailedError)) return result;
    if (j - i === 1) return this.#retryAlone(records[i]!, endOf(i + 1), hw, result, 1);
    const named = result.offset === undefined ? -1 : chunk.findIndex((r) => r.offset === result.offset);
    if (named >= 0) {
      const k = i + named;
      if (k > i) {
        const before = await this.#applyRange(records, i, k, endOf, hw);
        if (before !== 'ok') return before;
      }
      const alone = await this.#retryAlone(records[k]!, endOf(k + 1), hw, result, 1);
      if (alone !== 'ok' || k + 1 === j) return alone;
      return this.#applyRange(records, k + 1, j, endOf, hw);
    }
    const mid = i + Math.floor((j - i) / 2);
    const left = await this.#applyRange(records, i, mid, endOf, hw);
    if (left !== 'ok') return left;
    return this.#applyRange(records, mid, j, endOf, hw);
  }

  /** Retries one failing record with back-off; when its budget is spent, dead-letters it or stops the partition. */
  async #retryAlone(record: RawRecord, end: bigint, hw: bigint, failure: RecordFailedError, attempts: number): Promise<Outcome> {
    const policy = this.#retry;
    const firstFailedAt = new Date();
    let error = failure;
    let tries = attempts;
    let verdict = judgeFailure(policy, error, tries, 0);
    while (verdict.kind === 'retry') {
      const { delayMs } = verdict;
      this.#log.warn('record failed; rolled back, will retry it alone', {
        offset: record.offset,
        attempt: tries,
        of: policy.attempts,
        retryInMs: delayMs,
        error: toError(error.cause).message,
      });
      this.events.emit('retry', {
        topic: this.topic,
        partition: this.partition,
        fromOffset: record.offset,
        attempt: tries,
        delayMs,
        error,
      });
      await sleep(delayMs, this.#backoffEnds);
      if (this.#stopping) return 'stopped';
      tries++;
      const result = await this.#commit(
        [record],
        { fetchedFrom: this.claim.nextOffset, nextOffset: end, recordCount: 1 },
        hw,
        undefined,
        tries,
      );
      if (!(result instanceof RecordFailedError)) return result;
      error = result;
      verdict = judgeFailure(policy, error, tries, Date.now() - firstFailedAt.getTime());
    }
    const cause = toError(error.cause);
    if (verdict.kind === 'stop-partition') {
      return this.#pause(
        record.offset,
        cause,
        'record failed for good; partition stopped (onExhausted: stop-partition). The other partitions go on.',
        { attempts: tries },
      );
    }
    return this.#deadLetter(record, end, hw, cause, tries, firstFailedAt, verdict.reason);
  }

  /** Writes the record to the dead letters in the transaction that moves the offset past it. */
  async #deadLetter(
    record: RawRecord,
    end: bigint,
    hw: bigint,
    cause: Error,
    attempts: number,
    firstFailedAt: Date,
    reason: DeadLetterReason,
  ): Promise<Outcome> {
    const deadLetter = deadLetterOf(record, cause, attempts, firstFailedAt);
    const outcome = await this.#commit([], { fetchedFrom: this.claim.nextOffset, nextOffset: end, recordCount: 0 }, hw, [
      deadLetter,
    ]);
    if (outcome !== 'ok') return outcome instanceof RecordFailedError ? 'stopped' : outcome;
    this.deadLettered++;
    this.#deadLettersInARow++;
    this.#log.error('record dead-lettered; the partition moves on', {
      offset: record.offset,
      attempts,
      reason,
      error: cause.message,
    });
    this.events.emit('dead-letter', {
      topic: this.topic,
      partition: this.partition,
      offset: record.offset,
      attempts,
      reason,
      error: cause,
    });
    const limit = this.#retry.maxConsecutiveDeadLetters;
    if (limit > 0 && this.#deadLettersInARow >= limit) {
      const error = new CircuitOpenError(
        `${limit} records of ${this.topic}/${this.partition} were dead-lettered in a row (maxConsecutiveDeadLetters ${limit}), ` +
          `the last one at offset ${record.offset}, with no record applied in between; the handler seems to fail on every ` +
          `record (last error: ${cause.message}). Fix the cause (code, schema, configuration), requeue the dead letters ` +
          '(`oncely dlq requeue`) and restart the worker; raise maxConsecutiveDeadLetters, or set it to 0, if this many in a ' +
          'row is expected.',
      );
      return this.#pause(
        this.claim.nextOffset,
        error,
        'circuit breaker open: too many dead letters in a row; partition stopped. The other partitions go on.',
        { deadLettersInARow: this.#deadLettersInARow, lastDeadLetter: record.offset },
      );
    }
    return 'ok';
  }

  /** Stops the partition where it is (claim kept, nothing more fetched), loudly: log line, stored stop, event, progress(). */
  async #pause(offset: bigint, error: Error, message: string, fields: Record<string, unknown>): Promise<'paused'> {
    const code = (error as { code?: string }).code ?? 'HANDLER_FAILED';
    const stop = { offset, error: error.message, code };
    this.fetchPosition = undefined;
    this.#mailbox.clear();
    this.#log.error(message, { offset, code, ...fields, error: error.message });
    await this.#recordStop(stop);
    // progress() and the event together, so whoever sees one sees the other.
    this.stoppedOn = stop;
    this.#syncGate();
    this.events.emit('partition-stopped', { topic: this.topic, partition: this.partition, offset, error });
    return 'paused';
  }

  /**
   * After an unclean hand-over (the previous holder died): writes the range it is about to apply
   * to the store first, so that a death during it is remembered, and narrows a range in flight at
   * repeated deaths down to the record that causes them (see crash-budget.ts).
   */
  async #applySuspect(
    records: RawRecord[],
    i: number,
    endOf: (j: number) => bigint,
    hw: bigint,
  ): Promise<{ outcome: Outcome; next: number }> {
    const { store, batchMaxRecords, batchMaxBytes, crashBudget } = this.options;
    const known = this.#suspect?.pending;
    const first = records[i]!.offset;
    const pending = known && first >= known.from && first < known.to ? known : undefined;
    this.#suspect = { pending };
    this.#syncGate();
    let inRange = 0;
    if (pending) while (i + inRange < records.length && records[i + inRange]!.offset < pending.to) inRange++;
    const normal = cutBatch(records, i, batchMaxRecords, batchMaxBytes) - i;
    const plan = planSuspect(pending, Math.max(1, inRange), normal, crashBudget);
    if (plan.kind === 'verdict') {
      const outcome = await this.#crashLoop(records[i]!, endOf(i + 1), hw, plan.evidence);
      if (outcome === 'ok') {
        this.#suspect = undefined; // dead-lettered: the commit cleared the evidence
        this.#syncGate();
      }
      return { outcome, next: i + 1 };
    }
    const j = i + plan.take;
    const release = plan.gated ? await this.suspectGate.exclusive((pending?.alone ?? 0) > 0) : await this.suspectGate.shared();
    try {
      if (this.#stopping) return { outcome: 'stopped', next: i };
      const evidence: CrashEvidence = { from: first, to: records[j - 1]!.offset + 1n, deaths: plan.deaths, alone: plan.alone };
      try {
        await this.#withStoreRetry(() => store.recordInFlight!(this.claim, evidence));
      } catch (e) {
        if (OncelyError.is(e, 'FENCED')) return { outcome: 'fenced', next: i };
        if (this.#stopping || this.#abort.signal.aborted) return { outcome: 'stopped', next: i };
        // Not transient (withStoreRetry waits those out): writing the evidence cannot succeed.
        throw await this.#stopSystemic(e, 'oncely', `recording the range in flight at offset ${first} (crash detection)`);
      }
      const outcome = await this.#applyRange(records, i, j, endOf, hw);
      if (outcome === 'ok') {
        // Narrowing: the rest of the range was in flight at the same deaths; otherwise all is clear.
        const rest = plan.gated && pending && this.claim.nextOffset < pending.to;
        this.#suspect = rest
          ? { pending: { from: this.claim.nextOffset, to: pending.to, deaths: plan.deaths - 1, alone: 0 } }
          : undefined;
        if (!rest && plan.deaths > 2)
          this.#log.info('crash evidence cleared: the range in flight at earlier deaths committed', { from: first });
        this.#syncGate();
      } else if (outcome !== 'fenced' && this.claim.nextOffset === first) {
        // Rolled back without a death (drain, a failing record stopped the partition): not evidence.
        await store.recordInFlight!(this.claim, pending ?? null).catch(() => {});
      }
      return { outcome, next: j };
    } finally {
      release();
    }
  }

  /** A record alone in flight at crashBudget consecutive deaths: stop the partition, or dead-letter it if so configured. */
  async #crashLoop(record: RawRecord, end: bigint, hw: bigint, evidence: CrashEvidence): Promise<Outcome> {
    const { crashBudget, onCrashLoop } = this.options;
    if (onCrashLoop === 'dead-letter') {
      const cause = crashLoopError(
        this.topic,
        this.partition,
        evidence,
        crashBudget,
        'It was dead-lettered without running its handler again.',
      );
      return this.#deadLetter(record, end, hw, cause, evidence.deaths, new Date(), 'crash');
    }
    const error = crashLoopError(
      this.topic,
      this.partition,
      evidence,
      crashBudget,
      "The partition is stopped and the record not skipped (onCrashLoop: 'stop-partition'). If the record kills the " +
        'process (a handler bug, memory), fix that and restart the worker with a higher crashBudget so that it is tried ' +
        "again; to set it aside instead, restart with onCrashLoop: 'dead-letter' (`oncely run --on-crash-loop " +
        'dead-letter`) and requeue it later with `oncely dlq requeue`.',
    );
    return this.#pause(record.offset, error, 'record kills the worker process; partition stopped. The other partitions go on.', {
      deathsAlone: evidence.alone,
      crashBudget,
    });
  }

  /** Runs a store call, retrying while the store is unavailable (an outage keeps the position and waits). */
  async #withStoreRetry<T>(fn: () => Promise<T>, what = 'store unavailable'): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await fn();
        this.#transients.recovered();
        return result;
      } catch (e) {
        // A partition held by another worker is its caller's to handle (a re-claim drops it).
        if (OncelyError.is(e, 'FENCED') || OncelyError.is(e, 'PARTITION_HELD') || this.#abort.signal.aborted) throw e;
        if (!this.#transient(e, 'oncely')) throw e;
        const delayMs = backoff(attempt, this.options.retry.initialDelayMs, this.options.retry.maxDelayMs);
        this.#transients.failed(what, e, attempt, delayMs);
        await sleep(delayMs, this.#backoffEnds);
        if (this.#stopping) throw new AbortedError();
      }
    }
  }

  #transient(e: unknown, source: ErrorSource): boolean {
    return classifyError(e, source, this.options.store) === 'transient';
  }

  /**
   * Stops the partition on an error no retry fixes (see classifyError): the position stays, the
   * log says why at error level with what to do, progress().stopped and the partition-stopped
   * event say so, and the returned PartitionStoppedError, thrown from run(), stops the worker.
   */
  async #stopSystemic(
    e: unknown,
    source: ErrorSource,
    doing?: string,
    todo?: string,
    what?: string,
  ): Promise<PartitionStoppedError> {
    const error = toError(OncelyError.is(e) && e.name === 'RecordFailedError' ? e.cause : e);
    const offset = this.claim.nextOffset;
    const code = failureKind(error);
    const remedy =
      todo ??
      this.options.store.remedy?.(error) ??
      (OncelyError.is(error, 'CONFIG_INVALID')
        ? 'fix the configuration it names, then start the worker again.'
        : OncelyError.is(error) && error.code !== 'STORE_FAILED'
          ? 'see the message above, fix the cause, then start the worker again.'
          : 'fix the cause (code, schema, permissions or configuration), then start the worker again.');
    const who =
      what ??
      (source === 'handler'
        ? `the handler of ${this.topic} failed with an error that is not the record's`
        : `${doing ? `while ${doing}, ` : ''}oncely met an error that is not the record's`);
    const stopped = new PartitionStoppedError(
      this.topic,
      this.partition,
      offset,
      `${who} (${code}: ${error.message}). To do: ${remedy}`,
      error,
    );
    const stop = { offset, error: stopped.message, code: stopped.code };
    this.fetchPosition = undefined;
    this.#mailbox.clear();
    this.#log.error('partition stopped: an error no retry fixes; the worker stops', {
      offset,
      class: 'systemic',
      code,
      error: stopped.message,
    });
    await this.#recordStop(stop);
    // progress() and the event together, so whoever sees one sees the other.
    this.stoppedOn = stop;
    this.#syncGate();
    this.events.emit('partition-stopped', { topic: this.topic, partition: this.partition, offset, error: stopped });
    // Said in full above, with what to do: the worker's failure line refers to it.
    return markLogged(stopped);
  }

  /**
   * One transaction with the handler over `chunk` (none for gaps and dead letters). Failures of
   * the store (connection lost, lock timeout), even when a handler's own statement hit them, are
   * retried here with back-off for as long as it takes, without spending any record's budget.
   * Returns the RecordFailedError when the handler or codec failed.
   */
  async #commit(
    chunk: RawRecord[],
    range: BatchRange,
    highWatermark: bigint,
    deadLetters?: DeadLetter[],
    recordAttempt = 1,
  ): Promise<Outcome | RecordFailedError> {
    const { store } = this.options;
    let idleTries = 0;
    for (let attempt = 1; ; attempt++) {
      if (this.#abort.signal.aborted) return 'stopped';
      const started = performance.now();
      const settled = this.#slow.start(range.fetchedFrom, range.recordCount);
      try {
        const claim = this.claim;
        const span = { group: this.app.group, topic: this.topic, partition: this.partition, epoch: claim.epoch };
        await traceBatch({ ...span, fromOffset: range.fetchedFrom, nextOffset: range.nextOffset, records: chunk }, (trace) =>
          store.runBatch(claim, range, (tx) => this.#runHandler(tx, chunk, recordAttempt, highWatermark, trace), {
            signal: this.#abort.signal,
            deadLetters,
          }),
        );
        settled();
        this.#transients.recovered();
        claim.nextOffset = range.nextOffset;
        if (claim.highestCommitted === null || range.nextOffset > claim.highestCommitted)
          claim.highestCommitted = range.nextOffset;
        this.committedBatches++;
        this.committedRecords += range.recordCount;
        if (range.recordCount > 0) this.#deadLettersInARow = 0;
        this.events.emit('commit', {
          topic: this.topic,
          partition: this.partition,
          fromOffset: range.fetchedFrom,
          nextOffset: range.nextOffset,
          records: range.recordCount,
          epoch: claim.epoch,
          durationMs: performance.now() - started,
          highWatermark,
        });
        return 'ok';
      } catch (e) {
        settled();
        if (OncelyError.is(e, 'FENCED')) return 'fenced';
        // The handler ended the transaction itself: a code error, never counted as committed,
        // retried or blamed on the record. It stops the worker (run() rejects).
        const ended = e instanceof RecordFailedError ? e.cause : e;
        if (OncelyError.is(ended, 'TRANSACTION_ENDED')) throw ended;
        if (this.#abort.signal.aborted) return 'stopped';
        // The store ended the transaction for staying idle too long: the handler's doing (slow
        // work that is not the database's inside the batch), not an outage. The batch is tried
        // again within the retry budget (a one-off pause passes), then the partition stops.
        const idle = OncelyError.is(e, 'IDLE_IN_TRANSACTION')
          ? e
          : e instanceof RecordFailedError && OncelyError.is(e.cause, 'IDLE_IN_TRANSACTION')
            ? e.cause
            : undefined;
        if (idle) {
          idleTries++;
          if (idleTries >= this.#retry.attempts) {
            throw await this.#stopSystemic(
              idle,
              'handler',
              undefined,
              "keep slow work that is not the database's out of the batch (do it before, or make it faster; fewer records " +
                'per batch, --batch-max-records, help when it adds up over many), or raise idleInTransactionTimeoutMs ' +
                '(--idle-in-transaction-timeout, ONCELY_IDLE_IN_TRANSACTION_TIMEOUT) above the longest batch; then start the ' +
                'worker again: it goes on from the stored position.',
              `the handler of ${this.topic} kept the batch's transaction idle for longer than the store allows, ` +
                `${idleTries} time(s) in a row`,
            );
          }
          const delayMs = backoff(idleTries, this.#retry.initialDelayMs, this.#retry.maxDelayMs);
          this.#log.warn('batch transaction ended: idle for longer than the store allows; rolled back, will retry', {
            from: range.fetchedFrom,
            records: range.recordCount,
            attempt: idleTries,
            attempts: this.#retry.attempts,
            delayMs,
            error: idle.message,
          });
          this.events.emit('retry', {
            topic: this.topic,
            partition: this.partition,
            fromOffset: range.fetchedFrom,
            attempt: idleTries,
            delayMs,
            error: idle,
          });
          if (this.#stopping) return this.#afterIdleStop();
          await sleep(delayMs, this.#backoffEnds);
          if (this.#stopping) return this.#afterIdleStop();
          continue;
        }
        const source: ErrorSource = e instanceof RecordFailedError ? 'handler' : 'oncely';
        const cls = classifyError(e, source, store);
        // The record's: its retry budget, then the dead letters (the caller decides).
        if (cls === 'record' && e instanceof RecordFailedError) return e;
        // No retry fixes it (a missing table, a privilege, a bad position): stop, never dead-letter.
        if (cls !== 'transient')
          throw await this.#stopSystemic(e, source, deadLetters?.length ? 'writing a dead letter' : undefined);
        const error = toError(e);
        const delayMs = backoff(attempt, this.options.retry.initialDelayMs, this.options.retry.maxDelayMs);
        this.#transients.failed('batch could not commit, rolled back: store unavailable', e, attempt, delayMs, {
          from: range.fetchedFrom,
          records: range.recordCount,
        });
        this.events.emit('retry', {
          topic: this.topic,
          partition: this.partition,
          fromOffset: range.fetchedFrom,
          attempt,
          delayMs,
          error,
        });
        if (this.#stopping) return 'stopped'; // draining: leave it for the next run
        await sleep(delayMs, this.#backoffEnds);
        if (this.#stopping) return 'stopped';
      }
    }
  }

  async #runHandler(tx: Tx, chunk: RawRecord[], attempt: number, highWatermark: bigint, trace: BatchTrace): Promise<void> {
    if (chunk.length === 0) return;
    const messages = decodeRecords(this.#def, this.topic, this.partition, chunk);
    const isReplay = (offset: bigint) => this.#isReplay(offset);
    const ctx: HandlerContext<Tx> = {
      tx,
      signal: this.#abort.signal,
      logger: this.#log,
      isReplay: this.#anyReplay(chunk),
      group: this.app.group,
      workerId: this.options.workerId,
      attempt,
    };
    await invokeHandler(
      this.#def,
      this.app.container,
      { topic: this.topic, partition: this.partition, messages, highWatermark },
      ctx,
      isReplay,
      chunk,
      trace,
      (offset) => this.#slow.at(offset),
    );
  }

  /** Whether the group applied any of these records before (ctx.isReplay). */
  #anyReplay(chunk: RawRecord[]): boolean {
    const hc = this.claim.highestCommitted;
    // In offset order: when the first record is not below the highest commit, none is (no call per record).
    if (hc === null || chunk[0]!.offset >= hc) return false;
    return chunk.some((r) => this.#isReplay(r.offset));
  }

  /** Whether this group applied the record at `offset` before (see TransactionalStore.appliedRanges). */
  #isReplay(offset: bigint): boolean {
    const hc = this.claim.highestCommitted;
    if (hc === null || offset >= hc) return false;
    const known = this.#applied?.claim === this.claim ? this.#applied.ranges : undefined;
    if (!known) return true; // the store cannot tell: below the highest commit counts as applied
    let lo = 0;
    let hi = known.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = known[mid]!;
      if (offset < r.from) hi = mid - 1;
      else if (offset >= r.to) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** Before replaying (position below highestCommitted), learns once per claim which ranges were applied. */
  async #loadApplied(firstOffset: bigint): Promise<void> {
    const { claim } = this;
    const hc = claim.highestCommitted;
    const { store } = this.options;
    if (hc === null || firstOffset >= hc || this.#applied?.claim === claim || !store.appliedRanges) return;
    const ranges = await this.#withStoreRetry(() => store.appliedRanges!(claim, claim.nextOffset, hc));
    this.#applied = { claim, ranges };
  }

  /** Applies the out-of-range policy: fail loudly, or move with a warning through the fenced CAS. */
  async #outOfRange(item: FetchOutOfRange): Promise<Outcome> {
    const policy = this.options.offsetOutOfRange;
    if (policy === 'fail') {
      throw new OffsetOutOfRangeError(this.topic, this.partition, item.fetchOffset, item.logStartOffset, item.highWatermark);
    }
    const resolved = await this.#withStoreRetry(
      () => this.options.reader.resolveOffsets(this.topic, [this.partition], policy),
      `Kafka unavailable while resolving offsetOutOfRange '${policy}'`,
    );
    const target = resolved.get(this.partition);
    if (target === undefined)
      throw new OffsetOutOfRangeError(this.topic, this.partition, item.fetchOffset, item.logStartOffset, item.highWatermark);
    if (target < item.fetchOffset) {
      // Past the end of the log: the topic was deleted and created again, or the log was truncated
      // (an unclean leader election). Moving back would apply records again, or different ones.
      const end = item.highWatermark ?? target;
      throw await this.#stopSystemic(
        new OncelyError(
          'OFFSET_OUT_OF_RANGE',
          `the stored position ${item.fetchOffset} is past the end of the log (high watermark ${end})`,
        ),
        'oncely',
        `applying offsetOutOfRange '${policy}', which would move it back to ${target}`,
        'oncely never moves a position backwards on its own (records would be applied again, or different ones). ' +
          'Was the topic deleted and created again, or the log truncated? Check what the group applied, then move the ' +
          `position on purpose: oncely offsets reset --group ${this.app.group} --topic ${this.topic}:${this.partition} ` +
          '--to-earliest (or --to-latest, --to-offset N) --execute, and start the worker again.',
      );
    }
    this.#log.warn(`stored offset is out of range; moving to ${policy} as offsetOutOfRange says`, {
      from: item.fetchOffset,
      to: target,
      logStart: item.logStartOffset,
      highWatermark: item.highWatermark,
      skippedRecords: target > item.fetchOffset ? target - item.fetchOffset : 0n,
    });
    this.events.emit('out-of-range', {
      topic: this.topic,
      partition: this.partition,
      from: item.fetchOffset,
      to: target,
      policy,
    });
    const result = await this.#commit(
      [],
      { fetchedFrom: item.fetchOffset, nextOffset: target, recordCount: 0 },
      item.highWatermark ?? target,
    );
    const outcome: Outcome = result instanceof RecordFailedError ? 'stopped' : result;
    if (outcome === 'ok') {
      this.fetchPosition = target;
      this.notifyFetcher();
    }
    return outcome;
  }

  /**
   * A batch that PostgreSQL ended for idling, when the worker stops the partition before retrying
   * it (a hand-off, or the worker's stop): a worker that was frozen is often past its lease by then,
   * and the membership round that hands the partition off also asked the runner to re-check its
   * claim, a request a stopping runner never reads. So the claim is checked here: 'fenced' when it
   * is gone (the fence is reported and the partition dropped, as after a refused commit), else
   * 'stopped'. An unreadable store counts as stopped: the release that follows is fenced anyway.
   */
  async #afterIdleStop(): Promise<'stopped' | 'fenced'> {
    const state = await this.options.store.position?.(this.claim).catch(() => undefined);
    return state && state.epoch !== this.claim.epoch ? 'fenced' : 'stopped';
  }

  /**
   * A runner that stops with the renewal's request to re-check its claim unread: a woken zombie is
   * typically handed off in the same membership round that found its lease lost, while its batch
   * waits to be retried after a lost connection. When another worker holds the partition now, the
   * fence is reported and the partition dropped (no release of a claim that is no longer ours), as
   * if the request had been read; still ours (a rewind) or unreadable, it stops as before.
   */
  async #exitStopped(): Promise<RunnerExit> {
    if (!this.#recheck) return 'stopped';
    const state = await this.options.store.position?.(this.claim).catch(() => undefined);
    if (!state || state.owner === this.options.workerId) return 'stopped';
    return (await this.#onFenced('renewal')) === 'dropped' ? 'dropped' : 'stopped';
  }

  /**
   * After a fence: re-claim when we are still the owner (an operator rewound), else drop.
   * `detectedBy`: a batch's transaction was refused (`commit`: rolled back, nothing of it written)
   * or the lease renewal found the claim gone (`renewal`).
   */
  async #onFenced(detectedBy: 'commit' | 'renewal'): Promise<'reclaimed' | 'dropped'> {
    const { store, workerId, leaseMs } = this.options;
    const fencedEpoch = this.claim.epoch;
    this.#recheck = false;
    if (detectedBy === 'commit') {
      this.#log.warn('commit refused: the claim is no longer current (a newer epoch); the batch was rolled back', {
        epoch: fencedEpoch,
      });
    }
    this.#mailbox.clear();
    this.fetchPosition = undefined;
    const state = await store.position?.(this.claim).catch((e) => {
      this.#log.warn('could not read the partition after a fence; dropping it', { error: toError(e).message });
      return null;
    });
    const drop = (owner: string | null) => {
      this.#log.warn('partition taken over by another worker; dropped (the worker takes it back once it is free and targeted)', {
        epoch: fencedEpoch,
        owner,
      });
      this.events.emit('fenced', {
        topic: this.topic,
        partition: this.partition,
        epoch: fencedEpoch,
        action: 'dropped',
        detectedBy,
      });
      this.#stopping = true;
      return 'dropped' as const;
    };
    if (!state || state.owner !== workerId || this.#stopping) return drop(state?.owner ?? null);
    try {
      this.claim = await this.#withStoreRetry(() =>
        store.claim({ ...this.claim, workerId, initialOffset: state.nextOffset, leaseMs, reclaim: true }),
      );
    } catch (e) {
      // Our lease ended and another worker claimed the partition between the read and the claim.
      if (OncelyError.is(e, 'PARTITION_HELD')) return drop((e as { owner?: string | null }).owner ?? null);
      throw e;
    }
    this.#suspect = this.#suspectOf(this.claim);
    this.#syncGate();
    this.fetchPosition = this.claim.nextOffset;
    this.events.emit('claim', {
      topic: this.topic,
      partition: this.partition,
      epoch: this.claim.epoch,
      nextOffset: this.claim.nextOffset,
    });
    this.#log.info('partition moved under us (rewound); re-claimed at the stored position', {
      epoch: this.claim.epoch,
      nextOffset: this.claim.nextOffset,
    });
    this.events.emit('fenced', {
      topic: this.topic,
      partition: this.partition,
      epoch: fencedEpoch,
      action: 'reclaimed',
      detectedBy,
    });
    this.notifyFetcher();
    return 'reclaimed';
  }
}
