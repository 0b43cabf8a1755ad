/** Resolves after ms, or early (without throwing) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential back-off with full jitter in the upper half: [d/2, d], d = min(max, initial·2^(attempt-1)). */
export function backoff(attempt: number, initialMs: number, maxMs: number): number {
  const d = Math.min(maxMs, initialMs * 2 ** Math.min(30, attempt - 1));
  return Math.round(d / 2 + Math.random() * (d / 2));
}

/** A promise with its resolve function, for wake-ups. */
export function signalPromise(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * A mutex whose urgent waiters go first. After an unclean hand-over, records are tried one at a
 * time across the whole worker, so a process death is charged to the one record in flight; a
 * record that already has attempts charged goes first, so a commit can clear it soonest.
 */
export class PriorityMutex {
  #held = false;
  readonly #urgent: Array<() => void> = [];
  readonly #normal: Array<() => void> = [];

  async acquire(urgent: boolean): Promise<() => void> {
    if (this.#held) await new Promise<void>((resolve) => (urgent ? this.#urgent : this.#normal).push(resolve));
    this.#held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#urgent.shift() ?? this.#normal.shift();
      if (next) next();
      else this.#held = false;
    };
  }
}
