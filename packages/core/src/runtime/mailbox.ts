import type { PartitionReadError } from '../errors.js';
import { type FetchedRecords, type FetchOutOfRange, recordSize } from '../reader/types.js';
import { sleep } from '../time.js';

/**
 * What the fetcher hands a runner; 'revalidate' asks it to re-check ownership (lease lost, rewound),
 * 'unreadable' says that the partition cannot be read where the runner would fetch next.
 */
export type MailboxItem =
  | FetchedRecords
  | FetchOutOfRange
  | { kind: 'revalidate' }
  | { kind: 'unreadable'; error: PartitionReadError };

/**
 * A partition runner's inbox: fetched batches wait here, in order, until the runner takes them.
 * `taken` tells the fetcher that there is room again (it fetches at most PREFETCH ahead).
 */
export class Mailbox {
  readonly #queue: MailboxItem[] = [];
  #wake: (() => void) | undefined;

  constructor(private readonly taken: () => void) {}

  get size(): number {
    return this.#queue.length;
  }

  push(item: MailboxItem): void {
    this.#queue.push(item);
    this.wake();
  }

  clear(): void {
    this.#queue.length = 0;
  }

  /** Ends a wait in {@link next} or {@link linger} (new item, or the runner is stopping). */
  wake(): void {
    this.#wake?.();
  }

  /** The next item, waiting for one; undefined once `stopping()` holds. */
  async next(stopping: () => boolean): Promise<MailboxItem | undefined> {
    while (this.#queue.length === 0) {
      if (stopping()) return undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
    if (stopping()) return undefined;
    const item = this.#queue.shift()!;
    this.taken();
    return item;
  }

  /**
   * Merges the next contiguous fetches into `first` while the batch has fewer than `maxRecords`,
   * waiting up to `lingerMs` for them (batchLingerMs; 0 takes what the fetch gave).
   */
  async linger(first: FetchedRecords, lingerMs: number, maxRecords: number, stopping: () => boolean): Promise<FetchedRecords> {
    let batch = first;
    const deadline = Date.now() + lingerMs;
    while (lingerMs > 0 && batch.records.length < maxRecords && !stopping()) {
      const next = this.#queue[0];
      if (next && next.kind === 'records' && next.fetchOffset === batch.nextOffset) {
        this.#queue.shift();
        this.taken();
        batch = { ...next, fetchOffset: batch.fetchOffset, records: [...batch.records, ...next.records] };
        continue;
      }
      if (next || Date.now() >= deadline) break;
      await Promise.race([sleep(deadline - Date.now()), new Promise<void>((r) => (this.#wake = r))]);
      this.#wake = undefined;
    }
    return batch;
  }
}

/**
 * Where a transaction over records[i..j) ends: where the next record starts (the offsets between
 * are gaps), or, for the last one, the fetch's nextOffset, which may skip trailing control records.
 */
export function rangeEnd(fetched: FetchedRecords, j: number): bigint {
  return j < fetched.records.length ? fetched.records[j]!.offset : fetched.nextOffset;
}

/** The end j of the next transaction from records[i]: at most maxRecords, and maxBytes of keys and values (at least one record). */
export function cutBatch(
  records: readonly FetchedRecords['records'][number][],
  i: number,
  maxRecords: number,
  maxBytes: number,
): number {
  let j = i;
  let bytes = 0;
  while (j < records.length && j - i < maxRecords) {
    const r = records[j]!;
    const size = recordSize(r);
    if (j > i && bytes + size > maxBytes) break;
    bytes += size;
    j++;
  }
  return j;
}
