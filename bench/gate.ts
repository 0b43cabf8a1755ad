/**
 * A start gate for the worker processes of `pnpm bench:scale`: a reader whose fetches return
 * nothing until the gate opens, so that the workers join the group, claim and hand off their
 * partitions (elastic membership runs as usual) before any record is applied, and the measured
 * window holds the group at its steady state only, with every worker starting at once.
 *
 * While closed, a fetch waits (up to its maxWaitMs, at most 500 ms, or until the gate opens or the
 * worker stops) and then answers every partition with no records at the offset it asked for: the
 * runtime drops such an answer (nothing to apply, position unchanged) and fetches again. Once
 * open, every fetch is the reader's own.
 */
import type { FetchOptions, FetchRequest, FetchResult, PartitionReader } from '@oncely/core';
import { intercept } from './stages.js';

export class StartGate {
  #open = false;
  #waiters = new Set<() => void>();

  get isOpen(): boolean {
    return this.#open;
  }

  open(): void {
    this.#open = true;
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  /** Resolves when the gate opens, `ms` passed or `signal` aborted, whichever comes first. */
  #wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#open || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }

  reader(reader: PartitionReader): PartitionReader {
    return intercept(reader, {
      fetch: async (requests: FetchRequest[], options?: FetchOptions): Promise<FetchResult[]> => {
        if (!this.#open) {
          await this.#wait(Math.min(options?.maxWaitMs ?? 500, 500), options?.signal);
          if (!this.#open)
            return requests.map((r) => ({
              kind: 'records',
              topic: r.topic,
              partition: r.partition,
              fetchOffset: r.offset,
              records: [],
              nextOffset: r.offset,
              highWatermark: r.offset,
            }));
        }
        return reader.fetch(requests, options);
      },
    });
  }
}
