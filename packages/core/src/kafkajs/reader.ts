import { AbortedError, ConfigError, KafkaUnavailableError, OncelyError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FetchOptions, FetchRequest, FetchResult, OffsetSpec, PartitionReader } from '../reader/types.js';
import { backoff, sleep } from '../time.js';
import { registerCompressionCodecs } from './compression.js';
import { CorruptRecordBatchError, KafkaAuthenticationError, KafkaProtocolError, TopicNotFoundError } from './errors.js';
import {
  allBrokers,
  createCluster,
  cutConnection,
  FETCH_CONNECTION,
  type KjsBroker,
  type KjsCluster,
  protocolError,
  sendFetch,
} from './internals.js';
import { type CompiledReaderOptions, compileReaderOptions, type KafkajsReaderOptions } from './options.js';
import { decodePartitionRecords, type FetchPartitionResponse } from './wire.js';

/** Lifecycle of a {@link KafkajsPartitionReader}. */
export type ReaderState = 'idle' | 'connecting' | 'connected' | 'closed';

const READ_UNCOMMITTED = 0;
const READ_COMMITTED = 1;
const OFFSET_OUT_OF_RANGE = 1;
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
 * Concurrent calls are safe: `fetch` calls to the same broker share its fetch connection and are
 * answered in order (Kafka serves one connection's requests one at a time), so a runtime should
 * fetch all its partitions in one call rather than one call per partition.
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

  constructor(options: KafkajsReaderOptions) {
    this.options = compileReaderOptions(options);
    this.log = this.options.logger.child({ component: 'kafka-reader' });
    registerCompressionCodecs();
    this.cluster = createCluster(this.options, this.log);
  }

  /** Where the reader is in its lifecycle. */
  get state(): ReaderState {
    return this.stateValue;
  }

  connect(): Promise<void> {
    if (this.stateValue === 'closed') return Promise.reject(this.closedError());
    if (!this.connecting) {
      this.stateValue = 'connecting';
      const attempt = this.retrying('connect to Kafka', this.stop.signal, () => this.cluster.connect()).then(
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
  }

  async partitions(topic: string): Promise<number[]> {
    await this.connect();
    return this.retrying(`load metadata of topic ${topic}`, this.stop.signal, async () => {
      const broker = await this.anyBroker();
      let md: Awaited<ReturnType<KjsBroker['metadata']>>;
      try {
        md = await broker.metadata([topic]);
      } catch (e) {
        if (errorType(toError(e)) === 'UNKNOWN_TOPIC_OR_PARTITION') throw new TopicNotFoundError(topic, { cause: e });
        throw e;
      }
      const t = md.topicMetadata.find((x) => x.topic === topic);
      if (!t || t.partitionMetadata.length === 0) throw new TopicNotFoundError(topic);
      return t.partitionMetadata.map((p) => p.partitionId).sort((a, b) => a - b);
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
    const inflight = new Set<KjsBroker>();
    const onAbort = () => {
      if (this.stateValue === 'closed') return; // close() drops everything itself
      const reason = Object.assign(new Error('Fetch connection dropped: a fetch on it was aborted.'), {
        name: 'KafkaJSConnectionError',
        retriable: true,
      });
      for (const broker of inflight) {
        const connection = broker.connectionPool.pool[FETCH_CONNECTION];
        if (connection) cutConnection(connection, reason).catch(() => {});
      }
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await abortable(this.fetchAll(requests, maxWaitMs, signal, inflight), signal);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async fetchAll(
    requests: FetchRequest[],
    maxWaitMs: number,
    signal: AbortSignal,
    inflight: Set<KjsBroker>,
  ): Promise<FetchResult[]> {
    const results: Array<FetchResult | undefined> = new Array(requests.length);
    let pending = requests.map((_, i) => i);
    let lastError: Error | undefined;
    // Partitions whose batch failed its CRC-32C, with how many fetches in a row it did.
    const damaged = new Map<number, { error: CorruptRecordBatchError; fetches: number }>();
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new AbortedError();
      const retry: number[] = [];
      let refresh = false;
      const outOfRange: number[] = [];
      const fail = (idx: number[], e: Error) => {
        retry.push(...idx);
        lastError = e;
        refresh ||= needsRefresh(e);
      };

      try {
        await this.ensureTopics([...new Set(pending.map((i) => requests[i]!.topic))]);
      } catch (e) {
        const err = toError(e);
        if (err instanceof OncelyError || !isRetriableKafka(err)) throw this.classify(err, 'load metadata');
        fail(pending, err);
        pending = [];
      }

      const byLeader = new Map<number, number[]>();
      for (const i of pending) {
        const r = requests[i]!;
        const meta = this.cluster.findTopicPartitionMetadata(r.topic).find((p) => p.partitionId === r.partition);
        if (!meta || meta.leader === undefined || meta.leader === null || meta.leader < 0) {
          fail([i], new Glitch(`No leader known for ${r.topic}/${r.partition}${meta ? '' : ' (partition not in metadata)'}.`));
          continue;
        }
        const list = byLeader.get(meta.leader);
        if (list) list.push(i);
        else byLeader.set(meta.leader, [i]);
      }

      // Once some partition has data, retried partitions must not hold it back with a long poll.
      const wait = results.some((r) => r?.kind === 'records' && r.records.length > 0) ? 0 : maxWaitMs;
      await Promise.all(
        [...byLeader].map(async ([leader, idx]) => {
          try {
            const broker = await this.cluster.findBroker({ nodeId: leader });
            const topics = [...groupBy(idx, (i) => requests[i]!.topic)].map(([topic, is]) => ({
              topic,
              partitions: is.map((i) => ({
                partition: requests[i]!.partition,
                fetchOffset: requests[i]!.offset,
                maxBytes: requests[i]!.maxBytes ?? this.options.maxBytesPerPartition,
              })),
            }));
            inflight.add(broker);
            const response = await sendFetch(broker, {
              isolationLevel: this.isolation(),
              maxWaitMs: wait,
              minBytes: this.options.minBytes,
              maxBytes: this.options.maxBytes,
              requestTimeoutMs: this.options.requestTimeoutMs,
              topics,
            }).finally(() => inflight.delete(broker));
            if (response.errorCode !== 0) {
              const err = protocolError(response.errorCode);
              if (!err.retriable) throw this.classify(err, `fetch from broker ${leader}`);
              return fail(idx, err);
            }
            const byKey = new Map<string, FetchPartitionResponse>();
            for (const t of response.topics) for (const p of t.partitions) byKey.set(`${t.topic}/${p.partition}`, p);
            for (const i of idx) {
              const r = requests[i]!;
              const p = byKey.get(`${r.topic}/${r.partition}`);
              if (!p) {
                fail([i], new Glitch(`Broker ${leader} left ${r.topic}/${r.partition} out of its fetch response.`));
              } else if (p.errorCode === OFFSET_OUT_OF_RANGE) {
                outOfRange.push(i);
              } else if (p.errorCode !== 0) {
                const err = protocolError(p.errorCode);
                if (!err.retriable && !STALE_METADATA.has(err.type)) {
                  throw this.classify(err, `fetch ${r.topic}/${r.partition} at ${r.offset}`);
                }
                fail([i], err);
              } else {
                try {
                  results[i] = await this.toResult(r, p);
                  damaged.delete(i);
                } catch (e) {
                  if (!(e instanceof CorruptRecordBatchError)) throw e;
                  // Damaged in transit or in the broker's cache: a refetch may come back intact.
                  damaged.set(i, { error: e, fetches: (damaged.get(i)?.fetches ?? 0) + 1 });
                  fail([i], e);
                }
              }
            }
          } catch (e) {
            const err = toError(e);
            if (err instanceof OncelyError || !isRetriableKafka(err)) throw this.classify(err, `fetch from broker ${leader}`);
            fail(idx, err);
          }
        }),
      );

      if (outOfRange.length > 0) {
        for (const i of await this.confirmOutOfRange(requests, outOfRange, results)) retry.push(i);
      }

      pending = retry;
      if (pending.length === 0) return results as FetchResult[];
      if (attempt >= this.options.retries) {
        const still = pending.map((i) => damaged.get(i)).find((d) => d !== undefined);
        if (still) {
          const e = still.error;
          throw new CorruptRecordBatchError(e.topic, e.partition, e.offset, e.storedCrc, e.computedCrc, still.fetches);
        }
        const which = pending.map((i) => `${requests[i]!.topic}/${requests[i]!.partition}`).join(', ');
        throw new KafkaUnavailableError(
          `Fetching ${which} failed ${attempt + 1} times (last: ${lastError?.message ?? 'unknown'}); check that the brokers ${this.options.brokers.join(',')} are up and lead these partitions.`,
          { cause: lastError },
        );
      }
      this.log.debug('fetch retry', { attempt: attempt + 1, partitions: pending.length, error: lastError?.message });
      await pause(this.backoff(attempt), signal);
      if (refresh) await this.cluster.refreshMetadata().catch(() => {});
    }
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
   * Looks up the log's bounds for partitions the broker called out of range. An offset that is
   * inside them after all (a new leader whose high watermark had not caught up yet) is retried
   * instead; the others get kind 'out-of-range'. Returns the indexes to retry.
   */
  private async confirmOutOfRange(
    requests: FetchRequest[],
    idx: number[],
    results: Array<FetchResult | undefined>,
  ): Promise<number[]> {
    const retry: number[] = [];
    for (const [topic, is] of groupBy(idx, (i) => requests[i]!.topic)) {
      const parts = is.map((i) => requests[i]!.partition);
      // Bounds of the whole log (read_uncommitted: the real high watermark), best effort.
      const [starts, ends] = await Promise.all([
        this.listOffsets(topic, parts, EARLIEST, READ_UNCOMMITTED).catch(() => undefined),
        this.listOffsets(topic, parts, LATEST, READ_UNCOMMITTED).catch(() => undefined),
      ]);
      for (const i of is) {
        const r = requests[i]!;
        const logStartOffset = starts?.get(r.partition);
        const highWatermark = ends?.get(r.partition);
        if (
          logStartOffset !== undefined &&
          highWatermark !== undefined &&
          r.offset >= logStartOffset &&
          r.offset <= highWatermark
        ) {
          retry.push(i);
          continue;
        }
        results[i] = {
          kind: 'out-of-range',
          topic,
          partition: r.partition,
          fetchOffset: r.offset,
          ...(logStartOffset !== undefined ? { logStartOffset } : {}),
          ...(highWatermark !== undefined ? { highWatermark } : {}),
        };
      }
    }
    return retry;
  }

  private async listOffsets(
    topic: string,
    partitions: number[],
    timestamp: bigint,
    isolationLevel: number,
  ): Promise<Map<number, bigint>> {
    await this.connect();
    if (partitions.length === 0) return new Map();
    return this.retrying(`list offsets of ${topic}`, this.stop.signal, async () => {
      await this.ensureTopics([topic]);
      const metadata = this.cluster.findTopicPartitionMetadata(topic);
      const byLeader = groupBy(partitions, (p) => {
        const leader = metadata.find((m) => m.partitionId === p)?.leader;
        if (leader === undefined || leader === null || leader < 0) throw new Glitch(`No leader known for ${topic}/${p}.`);
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

  /** Makes sure kafkajs's metadata covers these topics (leaders known), loading it if needed. */
  private async ensureTopics(topics: string[]): Promise<void> {
    const missing = topics.filter((t) => !this.cluster.targetTopics.has(t));
    try {
      if (missing.length > 0) await this.cluster.addMultipleTargetTopics(missing);
      else await this.cluster.refreshMetadataIfNecessary();
    } catch (e) {
      if (errorType(toError(e)) !== 'UNKNOWN_TOPIC_OR_PARTITION') throw e;
      // kafkajs loads metadata for all topics it ever read and fails when one is gone: find out
      // whether one of ours is missing, else forget the others.
      for (const t of topics) await this.partitions(t);
      this.cluster.targetTopics = new Set(topics);
      await this.cluster.refreshMetadata();
    }
  }

  private async anyBroker(): Promise<KjsBroker> {
    const broker = this.cluster.brokerPool.seedBroker ?? Object.values(this.cluster.brokerPool.brokers)[0];
    if (!broker) throw new Glitch('No broker connected.');
    if (!broker.isConnected()) await broker.connect();
    return broker;
  }

  /** Runs op, retrying retriable Kafka failures with back-off (and a metadata reload when stale) within the budget. */
  private async retrying<T>(what: string, signal: AbortSignal, op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new AbortedError();
      try {
        return await op();
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
        await pause(this.backoff(attempt), signal);
        if (needsRefresh(err) && this.stateValue === 'connected') await this.cluster.refreshMetadata().catch(() => {});
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
