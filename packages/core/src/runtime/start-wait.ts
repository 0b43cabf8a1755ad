import { AbortedError, OncelyError, type OncelyErrorCode, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import { backoff, sleep } from '../time.js';

/** A start-up that waited for an unavailable service longer than startTimeoutMs. */
export class StartTimeoutError extends OncelyError {
  override readonly name = 'StartTimeoutError';
  constructor(
    /** The start-up step that could not complete (e.g. `connect to Kafka`). */
    readonly step: string,
    readonly timeoutMs: number,
    waitedMs: number,
    last: OncelyError | Error,
  ) {
    // The code is the last failure's, so `OncelyError.is(e, 'KAFKA_UNAVAILABLE')` still tells what was missing.
    super(
      (OncelyError.is(last) ? last.code : 'STORE_UNAVAILABLE') as OncelyErrorCode,
      `Start-up gave up after ${(waitedMs / 1000).toFixed(1)} s (start timeout ${timeoutMs} ms: startTimeoutMs or ` +
        `--start-timeout raise it, 0 waits forever) at "${step}": ${last.message}`,
      { cause: last, retriable: true },
    );
  }
}

/** How a start-up waits out unavailable services. */
export interface StartWaitOptions {
  /** Total time start-up may wait, from the first step; 0 waits forever. */
  timeoutMs: number;
  /** Aborts a wait (the worker is being stopped): the waiting step then rejects with AbortedError. */
  signal: AbortSignal;
  logger: Logger;
  /** Whether an error is an outage worth waiting out (beside retriable OncelyErrors). */
  isTransient?: (e: unknown) => boolean;
}

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

/**
 * Runs start-up steps, waiting out outages with back-off: a database or broker that is down, or a
 * row another transaction holds, must not make a worker give up within seconds when the same
 * outage later on is waited out. Systemic failures (a rejected password, an unknown topic, a schema
 * too new) are not retriable and fail at once. One log line per change of what it waits for (not
 * one per attempt), and one when the wait is over.
 */
export class StartWait {
  readonly #started = Date.now();
  /** What the log last said start-up waits for (step and error code); undefined while nothing is waited for. */
  #waitingFor: string | undefined;
  #waitingSince = 0;

  constructor(private readonly options: StartWaitOptions) {}

  /** Runs `op` until it succeeds, a non-transient error, the start timeout, or the abort. */
  async step<T>(what: string, op: () => Promise<T>): Promise<T> {
    const { signal, logger, timeoutMs } = this.options;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await op();
        if (this.#waitingFor !== undefined) {
          logger.info(`start-up: ${what} available again after ${this.#seconds(this.#waitingSince)} s; going on`);
          this.#waitingFor = undefined;
        }
        return result;
      } catch (e) {
        // Only a wait is cut short: a step that succeeds after stop() was called still counts.
        if (signal.aborted) throw new AbortedError('The worker was stopped during start-up.');
        if (!this.#transient(e)) throw e;
        const error = toError(e);
        const state = `${what}|${OncelyError.is(error) ? error.code : error.name}`;
        if (state !== this.#waitingFor) {
          if (this.#waitingFor === undefined) this.#waitingSince = Date.now();
          this.#waitingFor = state;
          logger.warn(`start-up waiting (${what}): ${error.message}`, {
            startTimeoutMs: timeoutMs === 0 ? 'forever' : timeoutMs,
          });
        }
        const waited = Date.now() - this.#started;
        if (timeoutMs > 0 && waited >= timeoutMs) throw new StartTimeoutError(what, timeoutMs, waited, error);
        const delay = backoff(attempt, FIRST_DELAY_MS, MAX_DELAY_MS);
        await sleep(timeoutMs > 0 ? Math.min(delay, timeoutMs - waited) : delay, signal);
        if (signal.aborted) throw new AbortedError('The worker was stopped during start-up.');
      }
    }
  }

  #transient(e: unknown): boolean {
    if (OncelyError.is(e)) return e.retriable && !OncelyError.is(e, 'ABORTED');
    // Anything else at start is a bug or a configuration problem unless the store says otherwise.
    return this.options.isTransient?.(e) ?? false;
  }

  #seconds(since: number): string {
    return ((Date.now() - since) / 1000).toFixed(1);
  }
}
