/**
 * Per-stage timings of an oncely run without touching the runtime: the reader, the store, the codec
 * and the handler are wrapped, and each wrapper adds its time to one {@link StageTimings}.
 *
 * - fetch: inside reader.fetch() (the one fetch loop: long poll, network, wire decode);
 * - tx: inside store.runBatch(), per transaction, summed over partitions; of that, decode (the
 *   codec), handler (the app's function) and store (the rest: BEGIN, the fencing check, the commit
 *   compare-and-set, COMMIT and the event-loop waits between them);
 * - idle: per partition, the gaps between its transactions (waiting for fetched data, or for the
 *   event loop), summed.
 *
 * The wrappers cost two performance.now() calls per record (codec) and per call otherwise.
 */
import { performance } from 'node:perf_hooks';
import type { Codec, PartitionReader, TransactionalStore } from '@oncely/core';
import type { StageTimings } from './config.js';

/** A proxy of `target` whose listed methods are replaced; everything else is the target's, bound to it. */
export function intercept<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(overrides, prop)) return (overrides as Record<PropertyKey, unknown>)[prop];
      const v = Reflect.get(t, prop, t) as unknown;
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

export class Stages {
  readonly timings: StageTimings = {
    fetchMs: 0,
    fetches: 0,
    fetchedRecords: 0,
    txMs: 0,
    transactions: 0,
    decodeMs: 0,
    handlerMs: 0,
    storeMs: 0,
    idleMs: 0,
  };
  readonly #lastTxEnd = new Map<string, number>();

  reader(reader: PartitionReader): PartitionReader {
    const t = this.timings;
    return intercept(reader, {
      fetch: async (...args: Parameters<PartitionReader['fetch']>) => {
        const started = performance.now();
        try {
          const results = await reader.fetch(...args);
          for (const r of results) if (r.kind === 'records') t.fetchedRecords += r.records.length;
          return results;
        } finally {
          t.fetchMs += performance.now() - started;
          t.fetches++;
        }
      },
    });
  }

  store<Tx>(store: TransactionalStore<Tx>): TransactionalStore<Tx> {
    const t = this.timings;
    const lastTxEnd = this.#lastTxEnd;
    const runBatch: TransactionalStore<Tx>['runBatch'] = async (claim, range, work, options) => {
      const key = `${claim.topic}:${claim.partition}`;
      const started = performance.now();
      const previous = lastTxEnd.get(key);
      if (previous !== undefined) t.idleMs += started - previous;
      try {
        return await store.runBatch(claim, range, work, options);
      } finally {
        const ended = performance.now();
        lastTxEnd.set(key, ended);
        t.txMs += ended - started;
        t.transactions++;
      }
    };
    return intercept(store, { runBatch });
  }

  codec<T>(codec: Codec<T>): Codec<T> {
    const t = this.timings;
    return {
      name: codec.name,
      ...(codec.lazy ? { lazy: true } : {}),
      decode(value, record) {
        const started = performance.now();
        try {
          return codec.decode(value, record);
        } finally {
          t.decodeMs += performance.now() - started;
        }
      },
    };
  }

  handler<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
    const t = this.timings;
    return async (...args: A) => {
      const started = performance.now();
      try {
        await fn(...args);
      } finally {
        t.handlerMs += performance.now() - started;
      }
    };
  }

  /** The timings, with the store's share computed. */
  result(): StageTimings {
    const t = this.timings;
    return { ...t, storeMs: t.txMs - t.decodeMs - t.handlerMs };
  }
}
