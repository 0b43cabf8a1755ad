import { AbortedError, ConfigError, KafkaUnavailableError, OncelyError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FetchOptions, FetchRequest, FetchResult, OffsetSpec, PartitionReader } from '../reader/types.js';
import { RepeatGate } from '../repeat-gate.js';
import { backoff, sleep } from '../time.js';
import { registerCompressionCodecs } from './compression.js';
import { CorruptRecordBatchError, KafkaAuthenticationError, KafkaProtocolError, TopicNotFoundError } from './errors.js';
import { FetchLane } from './fetch-lane.js';
import {
  allBrokers,
  createCluster,
  cutConnection,
  FETCH_CONNECTION,
  type KjsBroker,
  type KjsCluster,
  protocolError,
  sendFetch,
  sendMetadata,
} from './internals.js';
import { LeaderCache, type MetadataResponse, type PartitionLeadership } from './metadata.js';
import { type CompiledReaderOptions, compileReaderOptions, type KafkajsReaderOptions } from './options.js';
import { decodePartitionRecords, type FetchPartitionResponse } from './wire.js';

/** Lifecycle of a {@link KafkajsPartitionReader}. */
export type ReaderState = 'idle' | 'connecting' | 'connected' | 'closed';

const READ_UNCOMMITTED = 0;
const READ_COMMITTED = 1;
const OFFSET_OUT_OF_RANGE = 1;
const UNKNOWN_TOPIC_OR_PARTITION = 3;
const EARLIEST = -2n;
const LATEST = -1n;

/** kafkajs errors that a retry (after reconnecting or reloading metadata) can fix. */
const RETRIABLE_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSLockTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSNumberOfRetriesExceeded',
]);

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
class Glitch extends Error {
  readonly retriable = true;
  readonly type = 'LEADER_NOT_AVAILABLE';
}

function errorType(e: Error): string | undefined {
  const t = (e as { type?: unknown }).type;
  return typeof t === 'string' ? t : undefined;
}

function isRetriableKafka(e: Error): boolean {
  return (e as { retriable?: unknown }).retriable === true || RETRIABLE_NAMES.has(e.name);
}

/** Error types of a broker that refused SASL (kafkajs names its own KafkaJSSASLAuthenticationError). */
const SASL_REFUSED = new Set(['SASL_AUTHENTICATION_FAILED', 'ILLEGAL_SASL_STATE', 'UNSUPPORTED_SASL_MECHANISM']);

/** Node's codes of a TLS handshake that failed on a certificate (ours or the broker's): no retry changes that. */
const TLS_REFUSED = /CERT|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|SELF_SIGNED|^ERR_SSL_.*ALERT/;

/** The Node error code of a connection error kafkajs wrapped (possibly in its retrier's error). */
function connectionCode(e: Error): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if ((cur as Error).name === 'KafkaJSConnectionError' && typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * A refused SASL authentication or TLS handshake as an error naming the mechanism, the user and
 * the fix (never the password); undefined for anything else.
 */
function authenticationFailure(err: Error, options: CompiledReaderOptions): KafkaAuthenticationError | undefined {
  const brokers = options.brokers.join(',');
  const tlsCode = options.ssl ? connectionCode(err) : undefined;
  if (tlsCode !== undefined && TLS_REFUSED.test(tlsCode)) {
    return new KafkaAuthenticationError(
      `TLS with ${brokers} failed: ${err.message} (${tlsCode}). Check the CA that verifies the brokers' certificates ` +
        '(ssl.ca) and, when the brokers require one, the client certificate and key; retrying will not help.',
      { cause: err },
    );
  }
  const type = errorType(err);
  if (err.name !== 'KafkaJSSASLAuthenticationError' && !(type !== undefined && SASL_REFUSED.has(type))) return undefined;
  const sasl = options.sasl as { mechanism?: unknown; username?: unknown } | undefined;
  const mechanism = typeof sasl?.mechanism === 'string' ? sasl.mechanism.toUpperCase() : 'SASL';
  const user = typeof sasl?.username === 'string' ? ` of user ${JSON.stringify(sasl.username)}` : '';
  const who = `SASL ${mechanism} authentication${user} at ${brokers}`;
  const message =
    type === 'ILLEGAL_SASL_STATE'
      ? `${who} failed: the broker takes no SASL on this listener (ILLEGAL_SASL_STATE). Point the brokers at its SASL listener (SASL_PLAINTEXT or SASL_SSL), or configure no SASL.`
      : `${who} failed: ${err.message}${type ? ` (${type})` : ''}. Check the mechanism, the user name and the password, and that the broker enables ${mechanism}; retrying will not help.`;
  return new KafkaAuthenticationError(message, { cause: err });
}

function needsRefresh(e: Error): boolean {
  const t = errorType(e);
  return (t !== undefined && STALE_METADATA.has(t)) || RETRIABLE_NAMES.has(e.name);
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
interface FetchCall {
  maxWaitMs: number;
  signal: AbortSignal;
  /** Brokers with a fetch of this call in flight, counted: an abort drops their fetch connections. */
  inflight: Map<KjsBroker, number>;
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

/**
 * The kafkajs adapter of {@link PartitionReader}: fetches partitions at explicit offsets over
 * kafkajs's broker connections, without a consumer group and without committing anything to Kafka.
 *
 * Concurrent calls are safe and independent: each partition is fetched and retried on its own, and
 * the partitions that wait for the same broker, from any call, go in one request per broker at a
 * time (Kafka serves one connection's requests one at a time, so more would only queue).
 *
 * @example
 * const reader = new KafkajsPartitionReader({ brokers: ['127.0.0.1:9092'] });
 * await reader.connect();
 * const [r] = await reader.fetch([{ topic: 'payments', partition: 0, offset: 0n }]);
 * if (r?.kind === 'records') position = r.nextOffset;
 * await reader.close();
 */
export class KafkajsPartitionReader implements PartitionReader {
  /** The validated options, defaults applied. */
  readonly options: CompiledReaderOptions;
  private readonly log: Logger;
  private readonly cluster: KjsCluster;
  private readonly stop = new AbortController();
  private stateValue: ReaderState = 'idle';
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly leaders: LeaderCache;
  private readonly lanes = new WeakMap<KjsBroker, FetchLane>();
  /** kafkajs's repeated errors and warnings: one line per change, repeats counted (flushed at close). */
  private readonly logGate = new RepeatGate();

  constructor(options: KafkajsReaderOptions) {
    this.options = compileReaderOptions(options);
    this.log = this.options.logger.child({ component: 'kafka-reader' });
    registerCompressionCodecs();
    this.cluster = createCluster(this.options, this.log, this.logGate);
    this.leaders = new LeaderCache(
      (topics) => this.loadMetadata(topics),
      (topic, code) => (code === UNKNOWN_TOPIC_OR_PARTITION || code === -1 ? new TopicNotFoundError(topic) : protocolError(code)),
      this.options.metadataMaxAgeMs,
    );
  }

  /**
   * The leader this reader fetches a partition from and its leader epoch, as its metadata has them
   * (undefined before the partition's topic was first read). For diagnostics and tests.
   */
  leaderOf(topic: string, partition: number): { nodeId: number; leaderEpoch: number } | undefined {
    const l = this.leaders.get(topic, partition);
    return l && l.leader >= 0 ? { nodeId: l.leader, leaderEpoch: l.leaderEpoch } : undefined;
  }

  /** Where the reader is in its lifecycle. */
  get state(): ReaderState {
    return this.stateValue;
  }

  connect(): Promise<void> {
    if (this.stateValue === 'closed') return Promise.reject(this.closedError());
    if (!this.connecting) {
      this.stateValue = 'connecting';
      const attempt = this.retrying('connect to Kafka', this.stop.signal, async () => {
        await this.cluster.connect();
        // kafkajs learns the other brokers from a metadata request (of no topic: cheap).
        await this.cluster.refreshMetadata();
      }).then(
        async () => {
          // close() ran while we connected: do not leave connections behind.
          if (this.stateValue === 'closed') {
            await this.cluster.disconnect().catch(() => {});
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
    // Pending fetches reject now; then the connections' queues are emptied, because kafkajs's
    // disconnect would otherwise wait for a pending long poll to come back.
    this.stop.abort();
    const reason = new AbortedError('The Kafka reader was closed.');
    await Promise.all(
      allBrokers(this.cluster).flatMap((broker) =>
        broker.connectionPool.pool.map((c) =>
          cutConnection(c, reason).catch((e: unknown) =>
            this.log.debug('dropping a connection failed', { error: toError(e).message }),
          ),
        ),
      ),
    );
    await this.cluster
      .disconnect()
      .catch((e: unknown) => this.log.warn('closing Kafka connections failed', { error: toError(e) }));
    this.logGate.flush();
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
    const inflight = new Map<KjsBroker, number>();
    const onAbort = () => {
      if (this.stateValue === 'closed') return; // close() drops everything itself
      const reason = Object.assign(new Error('Fetch connection dropped: a fetch on it was aborted.'), {
        name: 'KafkaJSConnectionError',
        retriable: true,
      });
      for (const broker of inflight.keys()) {
        const connection = broker.connectionPool.pool[FETCH_CONNECTION];
        if (connection) cutConnection(connection, reason).catch(() => {});
      }
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
    inflight: Map<KjsBroker, number>,
    options: FetchOptions,
  ): Promise<FetchResult[]> {
    const results: FetchResult[] = new Array(requests.length);
    const call: FetchCall = { maxWaitMs, signal, inflight, anyData: false };
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
  private async fetchPartition(r: FetchRequest, call: FetchCall): Promise<FetchResult> {
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
        refresh = needsRefresh(outcome);
      } catch (e) {
        const err = toError(e);
        if (call.signal.aborted) throw new AbortedError();
        if (err instanceof CorruptRecordBatchError) {
          // Damaged in transit or in the broker's cache: a refetch may come back intact.
          damaged = { error: err, fetches: (damaged?.fetches ?? 0) + 1 };
          lastError = err;
        } else if (err instanceof OncelyError || !isRetriableKafka(err) || authenticationFailure(err, this.options)) {
          throw this.classify(err, `fetch ${key} at ${r.offset}`);
        } else {
          lastError = err;
          refresh = needsRefresh(err);
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
   * are retriable kafkajs errors or final ones).
   */
  private async fetchOnce(
    r: FetchRequest,
    call: FetchCall,
    maxWaitMs: number,
    staleSince: number | undefined,
  ): Promise<FetchResult | Error> {
    const key = `${r.topic}/${r.partition}`;
    await this.leaders.ensure([r.topic], staleSince);
    const lead = this.leaders.get(r.topic, r.partition);
    if (!lead || lead.leader < 0) return new Glitch(`No leader known for ${key}${lead ? '' : ' (partition not in metadata)'}.`);
    const broker = await this.cluster.findBroker({ nodeId: lead.leader });
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

  private laneOf(broker: KjsBroker): FetchLane {
    let lane = this.lanes.get(broker);
    if (!lane) {
      lane = new FetchLane((topics, maxWaitMs) =>
        sendFetch(broker, {
          isolationLevel: this.isolation(),
          maxWaitMs,
          minBytes: this.options.minBytes,
          maxBytes: this.options.maxBytes,
          requestTimeoutMs: this.options.requestTimeoutMs,
          topics,
        }),
      );
      this.lanes.set(broker, lane);
    }
    return lane;
  }

  /** Loads partition leaders (Metadata v7, for the leader epochs) from any broker that answers. */
  private async loadMetadata(topics: string[]): Promise<MetadataResponse> {
    const before = new Map(topics.map((t) => [t, this.leaders.partitions(t)?.map((p) => this.leaders.get(t, p)!)]));
    const broker = await this.cluster.brokerPool.findConnectedBroker();
    const md = await sendMetadata(broker, topics, this.options.requestTimeoutMs);
    // A broker kafkajs does not know yet (or at a new address): kafkajs learns it from its own metadata.
    const known = this.cluster.brokerPool.brokers;
    if (
      md.brokers.some((b) => {
        const k = known[b.nodeId];
        return !k || k.connectionPool.host !== b.host || k.connectionPool.port !== b.port;
      })
    ) {
      await this.cluster.refreshMetadata();
    }
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
          const broker = await this.cluster.findBroker({ nodeId: leader });
          const { responses } = await broker.listOffsets({
            replicaId: -1,
            isolationLevel,
            topics: [{ topic, partitions: ps.map((partition) => ({ partition, timestamp: timestamp.toString() })) }],
          });
          for (const t of responses) for (const p of t.partitions) out.set(p.partition, BigInt(p.offset));
        }),
      );
      for (const p of partitions) if (!out.has(p)) throw new Glitch(`Broker gave no offset for ${topic}/${p}.`);
      return out;
    });
  }

  /** Runs op, retrying retriable Kafka failures with back-off (and a metadata reload when stale) within the budget. */
  private async retrying<T>(what: string, signal: AbortSignal, op: (staleSince?: number) => Promise<T>): Promise<T> {
    let staleSince: number | undefined;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new AbortedError();
      try {
        return await op(staleSince);
      } catch (e) {
        const err = toError(e);
        if (signal.aborted) throw new AbortedError();
        if (err instanceof OncelyError || !isRetriableKafka(err) || authenticationFailure(err, this.options)) {
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
        staleSince = needsRefresh(err) ? failedAt : undefined;
      }
    }
  }

  private classify(err: Error, what: string): OncelyError {
    if (err instanceof OncelyError) return err;
    const refused = authenticationFailure(err, this.options);
    if (refused) return refused;
    if (isRetriableKafka(err)) return new KafkaUnavailableError(`Could not ${what}: ${err.message}`, { cause: err });
    return new KafkaProtocolError(`Could not ${what}: ${err.message}${errorType(err) ? ` (${errorType(err)})` : ''}.`, {
      cause: err,
    });
  }

  /** `attempt` counts from 0 here. */
  private backoff(attempt: number): number {
    return backoff(attempt + 1, this.options.retryBackoffMs, this.options.retryBackoffMaxMs);
  }

  private isolation(): number {
    return this.options.isolationLevel === 'read_committed' ? READ_COMMITTED : READ_UNCOMMITTED;
  }

  private closedError(): AbortedError {
    return new AbortedError(`The Kafka reader is closed (state '${this.stateValue}'); create a new one.`);
  }
}
