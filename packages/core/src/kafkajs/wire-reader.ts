/**
 * What both reader adapters share: Fetch v11 at explicit offsets, sessionless, with
 * `currentLeaderEpoch` from the Metadata v7 {@link LeaderCache}; one request in flight per leader
 * ({@link FetchLane}); each partition retried alone within the retry budget; out-of-range
 * confirmed with ListOffsets; the same errors, messages and log lines under either adapter.
 *
 * An adapter supplies the client that carries the bytes (connections, request encoding, broker
 * handles) and what only it can tell about that client's errors: which ones a retry can fix, which
 * ones mean the broker may be gone, which ones are a refused authentication.
 */
import { AbortedError, ConfigError, KafkaUnavailableError, OncelyError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FetchOptions, FetchRequest, FetchResult, OffsetSpec, PartitionReader } from '../reader/types.js';
import { backoff, sleep } from '../time.js';
import { registerCompressionCodecs } from './compression.js';
import { CorruptRecordBatchError, type KafkaAuthenticationError, KafkaProtocolError, TopicNotFoundError } from './errors.js';
import { FetchLane } from './fetch-lane.js';
import { type BrokerFetch, protocolError } from './internals.js';
import { LeaderCache, type MetadataResponse, type PartitionLeadership } from './metadata.js';
import type { CompiledReaderOptions } from './options.js';
import { decodePartitionRecords, type FetchPartitionResponse, type FetchResponse } from './wire.js';

/** Lifecycle of a reader. */
export type WireReaderState = 'idle' | 'connecting' | 'connected' | 'closed';

const READ_UNCOMMITTED = 0;
const READ_COMMITTED = 1;
const OFFSET_OUT_OF_RANGE = 1;
const UNKNOWN_TOPIC_OR_PARTITION = 3;
const EARLIEST = -2n;
const LATEST = -1n;

/** Broker answers that mean our idea of who leads a partition is stale. */
const STALE_METADATA = new Set([
  'NOT_LEADER_FOR_PARTITION',
  'NOT_LEADER_OR_FOLLOWER',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'KAFKA_STORAGE_ERROR',
  'REPLICA_NOT_AVAILABLE',
  'OFFSET_NOT_AVAILABLE',
]);

/** A condition we detected ourselves (no leader known, partition missing from a response). */
export class Glitch extends Error {
  readonly retriable = true;
  readonly type = 'LEADER_NOT_AVAILABLE';
}

/** The `type` name of a protocol error (kafkajs's, or one of our glitches). */
export function errorType(e: Error): string | undefined {
  const t = (e as { type?: unknown }).type;
  return typeof t === 'string' ? t : undefined;
}

/** Waits out a back-off; rejects with AbortedError when the signal aborts (now or during the wait). */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, signal);
  if (signal.aborted) throw new AbortedError();
}

/** Settles with `work`, or rejects with AbortedError as soon as `signal` aborts (work is left to finish unobserved). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {}); // an abandoned operation must not become an unhandled rejection
  if (signal.aborted) return Promise.reject(new AbortedError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** What the partitions of one fetch call share. */
interface FetchCall<B> {
  maxWaitMs: number;
  signal: AbortSignal;
  /** Brokers with a fetch of this call in flight, counted: an abort drops their fetch connections. */
  inflight: Map<B, number>;
  /** Some partition of the call returned records. */
  anyData: boolean;
}

function groupBy<T, K>(items: T[], key: (t: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}

/** Where a reader keeps its fetch lanes, by broker handle (a WeakMap for objects, a Map for node ids). */
export interface LaneStore<B> {
  get(broker: B): FetchLane | undefined;
  set(broker: B, lane: FetchLane): unknown;
}

/**
 * The {@link PartitionReader} both adapters are: everything but the client. `B` is the adapter's
 * handle of a broker, the one its fetch lanes and in-flight fetches are keyed by.
 */
export abstract class WireReader<B> implements PartitionReader {
  /** The validated options, defaults applied. */
  readonly options: CompiledReaderOptions;
  protected readonly log: Logger;
  protected readonly stop = new AbortController();
  private stateValue: WireReaderState = 'idle';
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  protected readonly leaders: LeaderCache;
  protected abstract readonly lanes: LaneStore<B>;

  protected constructor(options: CompiledReaderOptions, logFields: Record<string, unknown>) {
    this.options = options;
    this.log = options.logger.child(logFields);
    registerCompressionCodecs();
    this.leaders = new LeaderCache(
      (topics) => this.loadMetadata(topics),
      (topic, code) => (code === UNKNOWN_TOPIC_OR_PARTITION || code === -1 ? new TopicNotFoundError(topic) : protocolError(code)),
      this.options.metadataMaxAgeMs,
    );
  }

  /** Opens the client's connections and learns the brokers, within the retry budget (see {@link retrying}). */
  protected abstract establish(): Promise<void>;

  /** Undoes {@link establish} when close() ran while it was under way. */
  protected async abandon(): Promise<void> {}

  /** Drops the client's connections; the stop signal has already aborted every pending operation. */
  protected abstract shutdown(): Promise<void>;

  /** The handle of the broker with this node id. */
  protected abstract brokerFor(nodeId: number): Promise<B>;

  /** Sends one Fetch v11 request to a broker (the lane's next one) and decodes its answer. */
  protected abstract sendFetch(broker: B, topics: BrokerFetch['topics'], maxWaitMs: number): Promise<FetchResponse>;

  /** Drops the fetch connections of these brokers, now: an aborted fetch call was waiting on them. */
  protected abstract dropFetchConnections(brokers: Iterable<B>): void;

  /** Sends Metadata v7 to any broker that answers, and keeps what the client needs of the broker list. */
  protected abstract requestMetadata(topics: string[]): Promise<MetadataResponse>;

  /** Sends ListOffsets to a partitions' leader: each partition's offset, or the partition's error thrown. */
  protected abstract requestOffsets(
    leader: number,
    topic: string,
    partitions: number[],
    timestamp: bigint,
    isolationLevel: number,
  ): Promise<Iterable<readonly [partition: number, offset: bigint]>>;

  /** A client error that a retry (after reconnecting or reloading metadata) can fix. */
  protected abstract isRetriable(err: Error): boolean;

  /**
   * A failure in the client rather than a broker's answer (connection lost, request timed out, broker
   * not found): the broker may be gone, so the leaders are reloaded before the retry.
   */
  protected abstract isClientFailure(err: Error): boolean;

  /** A refused SASL authentication or TLS handshake as an error naming the fix (never the password); undefined for anything else. */
  protected abstract authenticationFailure(err: Error): KafkaAuthenticationError | undefined;

  /**
   * The leader this reader fetches a partition from and its leader epoch, as its metadata has them
   * (undefined before the partition's topic was first read). For diagnostics and tests.
   */
  leaderOf(topic: string, partition: number): { nodeId: number; leaderEpoch: number } | undefined {
    const l = this.leaders.get(topic, partition);
    return l && l.leader >= 0 ? { nodeId: l.leader, leaderEpoch: l.leaderEpoch } : undefined;
  }

  /** Where the reader is in its lifecycle. */
  get state(): WireReaderState {
    return this.stateValue;
  }

  connect(): Promise<void> {
    if (this.stateValue === 'closed') return Promise.reject(this.closedError());
    if (!this.connecting) {
      this.stateValue = 'connecting';
      const attempt = this.establish().then(
        async () => {
          // close() ran while we connected: do not leave connections behind.
          if (this.stateValue === 'closed') {
            await this.abandon();
            throw this.closedError();
          }
          this.stateValue = 'connected';
        },
        (e: unknown) => {
          if (this.stateValue !== 'closed') {
            this.stateValue = 'idle';
            this.connecting = undefined; // a later call tries again
          }
          throw e;
        },
      );
      this.connecting = attempt;
    }
    return this.connecting;
  }

  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.stateValue = 'closed';
    // Pending fetches reject now; then the connections go.
    this.stop.abort();
    await this.shutdown();
  }

  async partitions(topic: string): Promise<number[]> {
    await this.connect();
    const askedAt = Date.now();
    return this.retrying(`load metadata of topic ${topic}`, this.stop.signal, async (staleSince) => {
      await this.leaders.ensure([topic], staleSince ?? askedAt);
      const partitions = this.leaders.partitions(topic);
      if (!partitions || partitions.length === 0) throw new TopicNotFoundError(topic);
      return partitions;
    });
  }

  /**
   * Under read_committed, 'latest' is the last stable offset (where a read_committed fetch stops;
   * equal to the high watermark when no transaction is open), as in Kafka's Java consumer.
   */
  async resolveOffsets(topic: string, partitions: number[], spec: OffsetSpec): Promise<Map<number, bigint>> {
    let timestamp: bigint;
    if (spec === 'earliest') timestamp = EARLIEST;
    else if (spec === 'latest') timestamp = LATEST;
    else if (spec && typeof spec === 'object' && Number.isSafeInteger(spec.timestamp) && spec.timestamp >= 0) {
      timestamp = BigInt(spec.timestamp);
    } else {
      throw new ConfigError(`Offset spec must be 'earliest', 'latest' or { timestamp: ms ≥ 0 }; got ${JSON.stringify(spec)}.`);
    }
    const found = await this.listOffsets(topic, partitions, timestamp, this.isolation());
    if (timestamp < 0n) return found;
    // No record at or after the timestamp: the broker says -1; the contract says high watermark.
    const missing = [...found].filter(([, o]) => o < 0n).map(([p]) => p);
    if (missing.length > 0) {
      const ends = await this.listOffsets(topic, missing, LATEST, this.isolation());
      for (const [p, o] of ends) found.set(p, o);
    }
    return found;
  }

  /** Under read_committed this is the last stable offset (see {@link resolveOffsets}). */
  highWatermarks(topic: string, partitions: number[]): Promise<Map<number, bigint>> {
    return this.listOffsets(topic, partitions, LATEST, this.isolation());
  }

  /**
   * Every partition is fetched on its own: it is retried alone (with a metadata reload when its
   * leader moved or is gone) while the others' results go to `onResult` as they arrive. Partitions
   * with the same leader share one request per broker, also across concurrent calls (see FetchLane).
   */
  async fetch(requests: FetchRequest[], options: FetchOptions = {}): Promise<FetchResult[]> {
    const maxWaitMs = options.maxWaitMs ?? this.options.maxWaitMs;
    if (!Number.isInteger(maxWaitMs) || maxWaitMs < 0 || maxWaitMs > 2 ** 31 - 1) {
      throw new ConfigError(`fetch option maxWaitMs must be an integer ≥ 0; got ${String(maxWaitMs)}.`);
    }
    const seen = new Set<string>();
    for (const r of requests) {
      const k = `${r.topic}/${r.partition}`;
      if (seen.has(k)) throw new ConfigError(`fetch was asked for ${k} twice in one call; ask for each partition once.`);
      seen.add(k);
      if (typeof r.offset !== 'bigint' || r.offset < 0n) {
        throw new ConfigError(`fetch offset of ${k} must be a bigint ≥ 0; got ${String(r.offset)}.`);
      }
    }
    if (requests.length === 0) return [];
    const signal = options.signal ? AbortSignal.any([options.signal, this.stop.signal]) : this.stop.signal;
    await abortable(this.connect(), signal);
    // Kafka cannot cancel a long poll, and a later fetch on the same connection would queue behind
    // it: an aborted fetch drops the fetch connections it is waiting on. Other fetches on them
    // see a connection error, which they retry on a new connection.
    const inflight = new Map<B, number>();
    const onAbort = () => {
      if (this.stateValue === 'closed') return; // close() drops everything itself
      this.dropFetchConnections(inflight.keys());
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await abortable(this.fetchEach(requests, maxWaitMs, signal, inflight, options), signal);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async fetchEach(
    requests: FetchRequest[],
    maxWaitMs: number,
    signal: AbortSignal,
    inflight: Map<B, number>,
    options: FetchOptions,
  ): Promise<FetchResult[]> {
    const results: FetchResult[] = new Array(requests.length);
    const call: FetchCall<B> = { maxWaitMs, signal, inflight, anyData: false };
    const errors: OncelyError[] = [];
    const notify = (what: string, fn: () => void) => {
      if (signal.aborted) return; // the promise has settled: nothing is delivered after it
      try {
        fn();
      } catch (e) {
        this.log.warn(`a fetch ${what} listener threw; it must not`, { error: toError(e).message });
      }
    };
    await Promise.all(
      requests.map(async (r, i) => {
        let result: FetchResult;
        try {
          result = await this.fetchPartition(r, call);
        } catch (e) {
          const err = this.classify(toError(e), `fetch ${r.topic}/${r.partition} at ${r.offset}`);
          errors.push(err);
          if (!OncelyError.is(err, 'ABORTED')) notify('onError', () => options.onError?.(err, r));
          return;
        }
        results[i] = result;
        if (result.kind === 'records' && result.records.length > 0) call.anyData = true;
        notify('onResult', () => options.onResult?.(result));
      }),
    );
    if (errors.length > 0) throw errors[0];
    return results;
  }

  /** One partition of a fetch call, retried alone within the retry budget. */
  private async fetchPartition(r: FetchRequest, call: FetchCall<B>): Promise<FetchResult> {
    const key = `${r.topic}/${r.partition}`;
    let lastError: Error | undefined;
    let staleSince: number | undefined;
    // A batch that failed its CRC-32C, with how many fetches in a row returned it damaged.
    let damaged: { error: CorruptRecordBatchError; fetches: number } | undefined;
    for (let attempt = 0; ; attempt++) {
      if (call.signal.aborted) throw new AbortedError();
      let refresh = false;
      try {
        // Once some partition of the call has data, a retried one must not hold it back with a long poll.
        const outcome = await this.fetchOnce(r, call, attempt > 0 && call.anyData ? 0 : call.maxWaitMs, staleSince);
        if (!(outcome instanceof Error)) return outcome;
        lastError = outcome;
        refresh = this.needsRefresh(outcome);
      } catch (e) {
        const err = toError(e);
        if (call.signal.aborted) throw new AbortedError();
        if (err instanceof CorruptRecordBatchError) {
          // Damaged in transit or in the broker's cache: a refetch may come back intact.
          damaged = { error: err, fetches: (damaged?.fetches ?? 0) + 1 };
          lastError = err;
        } else if (err instanceof OncelyError || !this.isRetriable(err) || this.authenticationFailure(err)) {
          throw this.classify(err, `fetch ${key} at ${r.offset}`);
        } else {
          lastError = err;
          refresh = this.needsRefresh(err);
        }
      }
      if (attempt >= this.options.retries) {
        if (damaged) {
          const e = damaged.error;
          throw new CorruptRecordBatchError(e.topic, e.partition, e.offset, e.storedCrc, e.computedCrc, damaged.fetches);
        }
        throw new KafkaUnavailableError(
          `Fetching ${key} failed ${attempt + 1} times (last: ${lastError?.message ?? 'unknown'}); check that the brokers ${this.options.brokers.join(',')} are up and lead it.`,
          { cause: lastError },
        );
      }
      this.log.debug('fetch retry', { partition: key, attempt: attempt + 1, error: lastError?.message });
      const failedAt = Date.now();
      await pause(this.backoff(attempt), call.signal);
      staleSince = refresh ? failedAt : undefined;
    }
  }

  /**
   * One try at one partition: its result, or the retriable error that this try met (thrown errors
   * are retriable client errors or final ones).
   */
  private async fetchOnce(
    r: FetchRequest,
    call: FetchCall<B>,
    maxWaitMs: number,
    staleSince: number | undefined,
  ): Promise<FetchResult | Error> {
    const key = `${r.topic}/${r.partition}`;
    await this.leaders.ensure([r.topic], staleSince);
    const lead = this.leaders.get(r.topic, r.partition);
    if (!lead || lead.leader < 0) return new Glitch(`No leader known for ${key}${lead ? '' : ' (partition not in metadata)'}.`);
    const broker = await this.brokerFor(lead.leader);
    call.inflight.set(broker, (call.inflight.get(broker) ?? 0) + 1);
    let p: FetchPartitionResponse | undefined;
    try {
      p = await this.laneOf(broker).fetch({
        topic: r.topic,
        partition: r.partition,
        fetchOffset: r.offset,
        maxBytes: r.maxBytes ?? this.options.maxBytesPerPartition,
        // A broker that is no longer the leader of this epoch says so (FENCED_LEADER_EPOCH) instead
        // of answering as a follower, which Fetch v11 allows: that is how a leader move is noticed.
        currentLeaderEpoch: lead.leaderEpoch,
        maxWaitMs,
        signal: call.signal,
      });
    } finally {
      const n = (call.inflight.get(broker) ?? 1) - 1;
      if (n > 0) call.inflight.set(broker, n);
      else call.inflight.delete(broker);
    }
    if (!p) return new Glitch(`Broker ${lead.leader} left ${key} out of its fetch response.`);
    if (p.errorCode === OFFSET_OUT_OF_RANGE) return this.confirmOutOfRange(r);
    if (p.errorCode !== 0) {
      const err = protocolError(p.errorCode);
      if (!err.retriable && !STALE_METADATA.has(err.type)) throw this.classify(err, `fetch ${key} at ${r.offset}`);
      return err;
    }
    return this.toResult(r, p);
  }

  private laneOf(broker: B): FetchLane {
    let lane = this.lanes.get(broker);
    if (!lane) {
      lane = new FetchLane((topics, maxWaitMs) => this.sendFetch(broker, topics, maxWaitMs));
      this.lanes.set(broker, lane);
    }
    return lane;
  }

  /** Loads partition leaders (Metadata v7, for the leader epochs) from any broker that answers. */
  protected async loadMetadata(topics: string[]): Promise<MetadataResponse> {
    const before = new Map(topics.map((t) => [t, this.leaders.partitions(t)?.map((p) => this.leaders.get(t, p)!)]));
    const md = await this.requestMetadata(topics);
    // One line per leader move: operators see why a partition paused.
    const moves: string[] = [];
    for (const t of md.topics) {
      const old = before.get(t.topic);
      if (!old) continue;
      for (const p of t.partitions) {
        const was = old.find((o: PartitionLeadership) => o.partition === p.partition);
        if (was && was.leader !== p.leader)
          moves.push(`${t.topic}/${p.partition}: ${was.leader} → ${p.leader} (epoch ${p.leaderEpoch})`);
      }
    }
    if (moves.length > 0) this.log.info('partition leaders moved', { moves: moves.join(', ') });
    return md;
  }

  private async toResult(r: FetchRequest, p: FetchPartitionResponse): Promise<FetchResult> {
    const decoded = await decodePartitionRecords(
      p.records,
      r.offset,
      p.abortedTransactions,
      this.isolation() === READ_COMMITTED,
      {
        topic: r.topic,
        partition: r.partition,
      },
    );
    const next = decoded.nextOffset !== undefined && decoded.nextOffset > r.offset ? decoded.nextOffset : r.offset;
    return {
      kind: 'records',
      topic: r.topic,
      partition: r.partition,
      fetchOffset: r.offset,
      records: decoded.records,
      nextOffset: next,
      highWatermark: p.highWatermark,
      ...(p.lastStableOffset >= 0n ? { lastStableOffset: p.lastStableOffset } : {}),
      ...(p.logStartOffset >= 0n ? { logStartOffset: p.logStartOffset } : {}),
    };
  }

  /**
   * Looks up the log's bounds of a partition the broker called out of range. An offset that is
   * inside them after all (a new leader whose high watermark had not caught up yet) is retried
   * instead (a Glitch is returned); else the result is kind 'out-of-range'.
   */
  private async confirmOutOfRange(r: FetchRequest): Promise<FetchResult | Error> {
    // Bounds of the whole log (read_uncommitted: the real high watermark), best effort.
    const [starts, ends] = await Promise.all([
      this.listOffsets(r.topic, [r.partition], EARLIEST, READ_UNCOMMITTED).catch(() => undefined),
      this.listOffsets(r.topic, [r.partition], LATEST, READ_UNCOMMITTED).catch(() => undefined),
    ]);
    const logStartOffset = starts?.get(r.partition);
    const highWatermark = ends?.get(r.partition);
    if (logStartOffset !== undefined && highWatermark !== undefined && r.offset >= logStartOffset && r.offset <= highWatermark) {
      return new Glitch(`${r.topic}/${r.partition} was out of range at ${r.offset}, which is inside its log after all.`);
    }
    return {
      kind: 'out-of-range',
      topic: r.topic,
      partition: r.partition,
      fetchOffset: r.offset,
      ...(logStartOffset !== undefined ? { logStartOffset } : {}),
      ...(highWatermark !== undefined ? { highWatermark } : {}),
    };
  }

  private async listOffsets(
    topic: string,
    partitions: number[],
    timestamp: bigint,
    isolationLevel: number,
  ): Promise<Map<number, bigint>> {
    await this.connect();
    if (partitions.length === 0) return new Map();
    return this.retrying(`list offsets of ${topic}`, this.stop.signal, async (staleSince) => {
      await this.leaders.ensure([topic], staleSince);
      const byLeader = groupBy(partitions, (p) => {
        const leader = this.leaders.get(topic, p)?.leader;
        if (leader === undefined || leader < 0) throw new Glitch(`No leader known for ${topic}/${p}.`);
        return leader;
      });
      const out = new Map<number, bigint>();
      await Promise.all(
        [...byLeader].map(async ([leader, ps]) => {
          for (const [p, offset] of await this.requestOffsets(leader, topic, ps, timestamp, isolationLevel)) out.set(p, offset);
        }),
      );
      for (const p of partitions) if (!out.has(p)) throw new Glitch(`Broker gave no offset for ${topic}/${p}.`);
      return out;
    });
  }

  /** Runs op, retrying retriable Kafka failures with back-off (and a metadata reload when stale) within the budget. */
  protected async retrying<T>(what: string, signal: AbortSignal, op: (staleSince?: number) => Promise<T>): Promise<T> {
    let staleSince: number | undefined;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new AbortedError();
      try {
        return await op(staleSince);
      } catch (e) {
        const err = toError(e);
        if (signal.aborted) throw new AbortedError();
        if (err instanceof OncelyError || !this.isRetriable(err) || this.authenticationFailure(err)) {
          throw this.classify(err, what);
        }
        if (attempt >= this.options.retries) {
          throw new KafkaUnavailableError(
            `Could not ${what} after ${attempt + 1} attempts (last: ${err.message}); check that the brokers ${this.options.brokers.join(',')} are up and reachable.`,
            { cause: err },
          );
        }
        this.log.debug('retrying', { what, attempt: attempt + 1, error: err.message });
        const failedAt = Date.now();
        await pause(this.backoff(attempt), signal);
        staleSince = this.needsRefresh(err) ? failedAt : undefined;
      }
    }
  }

  private needsRefresh(e: Error): boolean {
    const t = errorType(e);
    return (t !== undefined && STALE_METADATA.has(t)) || this.isClientFailure(e);
  }

  private classify(err: Error, what: string): OncelyError {
    if (err instanceof OncelyError) return err;
    const refused = this.authenticationFailure(err);
    if (refused) return refused;
    if (this.isRetriable(err)) return new KafkaUnavailableError(`Could not ${what}: ${err.message}`, { cause: err });
    return new KafkaProtocolError(`Could not ${what}: ${err.message}${errorType(err) ? ` (${errorType(err)})` : ''}.`, {
      cause: err,
    });
  }

  /** `attempt` counts from 0 here. */
  private backoff(attempt: number): number {
    return backoff(attempt + 1, this.options.retryBackoffMs, this.options.retryBackoffMaxMs);
  }

  /** The isolation level as Kafka's requests encode it. */
  protected isolation(): number {
    return this.options.isolationLevel === 'read_committed' ? READ_COMMITTED : READ_UNCOMMITTED;
  }

  private closedError(): AbortedError {
    return new AbortedError(`The Kafka reader is closed (state '${this.stateValue}'); create a new one.`);
  }
}
