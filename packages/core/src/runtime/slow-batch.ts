import type { Logger } from '../logger.js';

/** While a batch stays unsettled past the threshold, the log says so again this often. */
const STILL_RUNNING_LOG_MS = 60_000;

/** What the log says a stuck partition costs and where to look. */
const WHAT_TO_DO =
  "the partition applies nothing until the handler settles, and the batch's transaction keeps its locks: look at what " +
  "the handler awaits (a call that never answers, a promise that never settles; pg_stat_activity shows the worker's " +
  'statement if it is one), and give such calls a timeout (ctx.signal aborts on a stop)';

/**
 * Watches one partition's batch transactions: a handler that never settles (an await on a call
 * without a timeout, a promise nobody resolves) would otherwise hold its partition in silence, the
 * worker still `running` and its lag growing with nothing in the log. Past `thresholdMs` the log
 * says which batch and which record it is at (warn), again once a minute while it lasts (error),
 * and when it settles (info); progress() and the metrics show how long it has been open. It only
 * reports: a batch that finishes late commits as usual.
 */
export class SlowBatchWatch {
  #startedAt: number | undefined;
  #at: bigint | undefined;
  #warned = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    /** 0 turns the watch off (progress() still shows the open batch). */
    private readonly thresholdMs: number,
  ) {}

  /** A batch transaction of `records` records from `from` starts; returns what ends its watch. */
  start(from: bigint, records: number): () => void {
    const startedAt = performance.now();
    this.#startedAt = startedAt;
    this.#at = undefined;
    this.#warned = false;
    const fields = () => ({
      from,
      records,
      ...(this.#at === undefined ? {} : { at: this.#at }),
      runningForMs: Math.round(performance.now() - startedAt),
    });
    const still = () => {
      this.log.error('batch still running: the handler has not settled', fields());
      this.#timer = setTimeout(still, STILL_RUNNING_LOG_MS).unref();
    };
    if (this.thresholdMs > 0) {
      this.#timer = setTimeout(() => {
        this.#warned = true;
        this.log.warn(`batch still running after ${this.thresholdMs} ms (--slow-batch-warning): ${WHAT_TO_DO}`, fields());
        this.#timer = setTimeout(still, STILL_RUNNING_LOG_MS).unref();
      }, this.thresholdMs).unref();
    }
    return () => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      if (this.#warned) this.log.info('slow batch settled', fields());
      this.#startedAt = undefined;
      this.#at = undefined;
      this.#warned = false;
    };
  }

  /** The record whose handler runs now (message handlers). */
  at(offset: bigint): void {
    this.#at = offset;
  }

  /** How long the open batch transaction has run, in ms; undefined between batches. */
  runningMs(): number | undefined {
    return this.#startedAt === undefined ? undefined : Math.round(performance.now() - this.#startedAt);
  }
}
