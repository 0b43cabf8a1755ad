import { AbortedError } from '../errors.js';
import type { BrokerFetch } from './internals.js';
import type { FetchPartitionResponse, FetchResponse } from './wire.js';

/** One partition that waits in a broker's lane for the lane's next fetch request. */
export interface LaneFetch {
  topic: string;
  partition: number;
  fetchOffset: bigint;
  maxBytes: number;
  /** The leader epoch the reader believes current (-1: no check). */
  currentLeaderEpoch: number;
  maxWaitMs: number;
  signal: AbortSignal;
}

/** How long a partition counts as draining after an answer that carried records. */
const DRAINING_FOR_MS = 1_000;

/**
 * The longest a request may wait at the broker while a partition of the lane that is draining a
 * backlog is not in it (it is applying what it fetched and will ask again shortly).
 */
export const DRAINING_LANE_MAX_WAIT_MS = 10;

interface Waiting {
  fetch: LaneFetch;
  resolve(p: FetchPartitionResponse | undefined): void;
  reject(e: unknown): void;
}

/**
 * The fetches to one broker, one request in flight at a time: the partitions that ask while a
 * request is out wait and all go in the next one. Kafka answers one connection's requests in
 * order, so separate requests would only queue behind each other's long polls; one request per
 * broker carrying every waiting partition is what the single fetch loop used to send, while a
 * broker that is down or slow now holds back only the partitions it leads.
 *
 * One request at a time has a cost: a request of caught-up partitions long-polls (up to its
 * maxWaitMs), and a partition with a backlog that asks meanwhile waits for it to end. Left alone,
 * a lagging partition that shares its broker with idle ones (a rewound or replayed partition, the
 * tail of a catch-up) got at most a fetch or two per long poll: a few hundred records per 500 ms.
 * So while a partition of the lane is draining (its last answer carried records, within the last
 * second) and not in the request, the request waits at most {@link DRAINING_LANE_MAX_WAIT_MS}:
 * the idle partitions are polled more often while there is a backlog, and a lane of idle
 * partitions only still long-polls as asked.
 */
export class FetchLane {
  #waiting: Waiting[] = [];
  #busy = false;
  /** Partitions (topic NUL partition) whose last answer carried records, until when they count as draining. */
  #draining = new Map<string, number>();

  constructor(
    /** Sends one request to this lane's broker. */
    private readonly send: (topics: BrokerFetch['topics'], maxWaitMs: number) => Promise<FetchResponse>,
  ) {}

  /**
   * Fetches one partition in the lane's next request. Resolves with the broker's answer for it
   * (undefined when the broker left it out; a request-level error comes as the partition's
   * errorCode); rejects with the request's error (connection lost, timeout).
   */
  fetch(fetch: LaneFetch): Promise<FetchPartitionResponse | undefined> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ fetch, resolve, reject });
      if (!this.#busy) {
        this.#busy = true;
        // Partitions that ask in the same turn go in one request.
        setImmediate(() => void this.#pump());
      }
    });
  }

  async #pump(): Promise<void> {
    for (;;) {
      const batch: Waiting[] = [];
      const rest: Waiting[] = [];
      const keys = new Set<string>();
      for (const w of this.#waiting) {
        if (w.fetch.signal.aborted) {
          w.reject(new AbortedError());
          continue;
        }
        // Concurrent calls may ask for the same partition: one of them waits for the next request.
        const key = `${w.fetch.topic}\u0000${w.fetch.partition}`;
        if (keys.has(key)) rest.push(w);
        else {
          keys.add(key);
          batch.push(w);
        }
      }
      this.#waiting = rest;
      if (batch.length === 0) {
        this.#busy = false;
        return;
      }
      await this.#sendBatch(batch);
      // The partitions just answered usually ask again within a turn: let them join the next request.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async #sendBatch(batch: Waiting[]): Promise<void> {
    const byTopic = new Map<string, BrokerFetch['topics'][number]['partitions']>();
    for (const { fetch: f } of batch) {
      const list = byTopic.get(f.topic) ?? [];
      list.push({
        partition: f.partition,
        currentLeaderEpoch: f.currentLeaderEpoch,
        fetchOffset: f.fetchOffset,
        maxBytes: f.maxBytes,
      });
      byTopic.set(f.topic, list);
    }
    const maxWaitMs = Math.min(
      ...batch.map((w) => w.fetch.maxWaitMs),
      this.#drainingElsewhere(batch) ? DRAINING_LANE_MAX_WAIT_MS : Infinity,
    );
    let response: FetchResponse;
    try {
      response = await this.send(
        [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
        maxWaitMs,
      );
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    const answers = new Map<string, FetchPartitionResponse>();
    for (const t of response.topics) for (const p of t.partitions) answers.set(`${t.topic}\u0000${p.partition}`, p);
    const until = Date.now() + DRAINING_FOR_MS;
    for (const w of batch) {
      const key = `${w.fetch.topic}\u0000${w.fetch.partition}`;
      const p = answers.get(key);
      if (p?.records && p.records.length > 0) this.#draining.set(key, until);
      else this.#draining.delete(key);
      if (response.errorCode !== 0) {
        w.resolve({
          partition: w.fetch.partition,
          errorCode: response.errorCode,
          highWatermark: -1n,
          lastStableOffset: -1n,
          logStartOffset: -1n,
          abortedTransactions: null,
          records: null,
        });
      } else w.resolve(p);
    }
  }

  /** Whether a partition that is not in `batch` is draining a backlog (and forgets those that stopped). */
  #drainingElsewhere(batch: Waiting[]): boolean {
    if (this.#draining.size === 0) return false;
    const now = Date.now();
    const inBatch = new Set(batch.map((w) => `${w.fetch.topic}\u0000${w.fetch.partition}`));
    let elsewhere = false;
    for (const [key, until] of this.#draining) {
      if (until <= now) this.#draining.delete(key);
      else if (!inBatch.has(key)) elsewhere = true;
    }
    return elsewhere;
  }
}
