import type * as Plt from '@platformatic/kafka';
import { AbortedError, ConfigError, KafkaUnavailableError, OncelyError, toError } from '../errors.js';
import { registerCompressionCodecs } from '../kafkajs/compression.js';
import { CorruptRecordBatchError, KafkaAuthenticationError, KafkaProtocolError, TopicNotFoundError } from '../kafkajs/errors.js';
import { FetchLane } from '../kafkajs/fetch-lane.js';
import { protocolError } from '../kafkajs/internals.js';
import { LeaderCache, type MetadataResponse, type PartitionLeadership } from '../kafkajs/metadata.js';
import type { CompiledReaderOptions } from '../kafkajs/options.js';
import { decodePartitionRecords, type FetchPartitionResponse, type FetchResponse } from '../kafkajs/wire.js';
import type { Logger } from '../logger.js';
import type { FetchOptions, FetchRequest, FetchResult, OffsetSpec, PartitionReader } from '../reader/types.js';
import { backoff, sleep } from '../time.js';
import { compilePlatformaticOptions, type PlatformaticReaderOptions } from './options.js';
import { type Apis, createApis, type FetchTopic } from './protocol.js';
import { connectionSecurity } from './security.js';

/** Lifecycle of a {@link PlatformaticPartitionReader}. */
export type PlatformaticReaderState = 'idle' | 'connecting' | 'connected' | 'closed';

const READ_UNCOMMITTED = 0;
const READ_COMMITTED = 1;
const OFFSET_OUT_OF_RANGE = 1;
const UNKNOWN_TOPIC_OR_PARTITION = 3;
const EARLIEST = -2n;
const LATEST = -1n;
/** The library's per-connection request timeout is switched off on fetch connections: each fetch times itself. */
const NO_TIMEOUT = 2 ** 31 - 1;

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

/** A condition we detected ourselves (no leader known, partition missing from a response, a timeout). */
class Glitch extends Error {
  readonly retriable = true;
  readonly type = 'LEADER_NOT_AVAILABLE';
}

/** A connection-level trouble: retriable, and a reason to reload metadata (the broker may be gone). */
class ConnectionGlitch extends Error {
  readonly retriable = true;
  readonly type = 'CONNECTION';
}

function errorType(e: Error): string | undefined {
  const t = (e as { type?: unknown }).type;
  return typeof t === 'string' ? t : undefined;
}

/** The library's errors and their causes, depth-first (MultipleErrors holds several). */
function* chain(e: unknown, depth = 0): Generator<Error> {
  if (!(e instanceof Error) || depth > 5) return;
  yield e;
  if (e instanceof AggregateError) for (const x of e.errors) yield* chain(x, depth + 1);
  yield* chain((e as { cause?: unknown }).cause, depth + 1);
}

/** kafkajs's protocol errors and our glitches say `retriable`; the library's errors say `canRetry`. */
function isRetriable(e: Error): boolean {
  if ((e as { retriable?: unknown }).retriable === true) return true;
  if ((e as { canRetry?: unknown }).canRetry === true) return true;
  return e instanceof AggregateError && e.errors.some((x) => x instanceof Error && isRetriable(x));
}

/** A connection error of the library (NetworkError, TimeoutError), as opposed to a broker's answer. */
function isConnectionError(e: Error): boolean {
  const code = (e as { code?: unknown }).code;
  return e instanceof ConnectionGlitch || code === 'PLT_KFK_NETWORK' || e instanceof AggregateError;
}

function needsRefresh(e: Error): boolean {
  const t = errorType(e);
  return (t !== undefined && STALE_METADATA.has(t)) || isConnectionError(e);
}

const TLS_REFUSED = /CERT|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|SELF_SIGNED|^ERR_SSL_.*ALERT/;
const SASL_REFUSED = /SASL_AUTHENTICATION_FAILED|ILLEGAL_SASL_STATE|UNSUPPORTED_SASL_MECHANISM/;

/** A refused TLS handshake or SASL authentication as an error naming the fix (never the password). */
function authenticationFailure(err: Error, options: CompiledReaderOptions): KafkaAuthenticationError | undefined {
  const brokers = options.brokers.join(',');
  for (const e of chain(err)) {
    const code = (e as { code?: unknown }).code;
    if (options.ssl && typeof code === 'string' && TLS_REFUSED.test(code)) {
      return new KafkaAuthenticationError(
        `TLS with ${brokers} failed: ${e.message} (${code}). Check the CA that verifies the brokers' certificates ` +
          '(ssl.ca) and, when the brokers require one, the client certificate and key; retrying will not help.',
        { cause: err },
      );
    }
    if (!options.ssl && e.message === 'Broker requires TLS.') {
      return new KafkaAuthenticationError(
        `The brokers ${brokers} speak TLS on this listener: set ssl (--kafka-ssl), or point the brokers at a plaintext listener.`,
        { cause: err },
      );
    }
  }
  const sasl = options.sasl as { mechanism?: unknown; username?: unknown } | undefined;
  if (!sasl) return undefined;
  const refused = [...chain(err)].find(
    (e) => (e as { code?: unknown }).code === 'PLT_KFK_AUTHENTICATION' || SASL_REFUSED.test(`${e.message} ${errorType(e) ?? ''}`),
  );
  if (!refused) return undefined;
  const mechanism = typeof sasl.mechanism === 'string' ? sasl.mechanism.toUpperCase() : 'SASL';
  const user = typeof sasl.username === 'string' ? ` of user ${JSON.stringify(sasl.username)}` : '';
  const detail = [...chain(err)].map((e) => e.message).join(': ');
  return new KafkaAuthenticationError(
    `SASL ${mechanism} authentication${user} at ${brokers} failed: ${detail}. Check the mechanism, the user name and the ` +
      `password, that the broker enables ${mechanism}, and that the brokers are its SASL listener; retrying will not help.`,
    { cause: err },
  );
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, signal);
  if (signal.aborted) throw new AbortedError();
}

function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {});
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

function parseBroker(hostPort: string): Plt.Broker {
  const i = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, i), port: Number(hostPort.slice(i + 1)) };
}

interface FetchCall {
  maxWaitMs: number;
  signal: AbortSignal;
  /** Leaders with a fetch of this call in flight, counted: an abort drops their fetch connections. */
  inflight: Map<number, number>;
  anyData: boolean;
}

/** What connect() made: the library, the APIs, and two pools (fetches never queue a metadata request behind a long poll). */
interface Wired {
  apis: Apis;
  control: Plt.ConnectionPool;
  fetches: Plt.ConnectionPool;
}

/**
 * A {@link PartitionReader} on @platformatic/kafka (an optional peer dependency: `npm install
 * @platformatic/kafka`; Node ≥ 22.22): the library's connections (TCP, TLS, SASL, request
 * correlation) carry Fetch v11, Metadata v7 and ListOffsets v4 requests made with its writers, and
 * every answer is decoded by core's own decoders, the ones the kafkajs adapter uses: each record
 * batch's CRC-32C is checked, read_committed drops aborted transactions and control records while
 * `nextOffset` moves past them, compaction gaps and compressed batches are handled the same way.
 *
 * It behaves as {@link KafkajsPartitionReader} does: no consumer group, no fetch session, one fetch
 * request in flight per leader carrying every partition that waits for it, `currentLeaderEpoch` in
 * every fetch (a demoted leader answers FENCED_LEADER_EPOCH and the partition's leader is reloaded),
 * out-of-range confirmed with ListOffsets, each partition retried alone.
 *
 * @example
 * const reader = new PlatformaticPartitionReader({ brokers: ['127.0.0.1:9092'] });
 * await reader.connect();
 * const [r] = await reader.fetch([{ topic: 'payments', partition: 0, offset: 0n }]);
 * await reader.close();
 */
export class PlatformaticPartitionReader implements PartitionReader {
  /** The validated options, defaults applied. */
  readonly options: CompiledReaderOptions;
  private readonly log: Logger;
  private readonly stop = new AbortController();
  private stateValue: PlatformaticReaderState = 'idle';
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private wired: Wired | undefined;
  private readonly leaders: LeaderCache;
  private readonly lanes = new Map<number, FetchLane>();
  /** Node id → address, from the latest metadata (seeded by nothing: the bootstrap list is used until then). */
  private readonly brokerAddresses = new Map<number, Plt.Broker>();
  private readonly bootstrap: Plt.Broker[];

  constructor(options: PlatformaticReaderOptions) {
    this.options = compilePlatformaticOptions(options);
    this.log = this.options.logger.child({ component: 'kafka-reader', reader: 'platformatic' });
    this.bootstrap = this.options.brokers.map(parseBroker);
    registerCompressionCodecs();
    this.leaders = new LeaderCache(
      (topics) => this.loadMetadata(topics),
      (topic, code) => (code === UNKNOWN_TOPIC_OR_PARTITION || code === -1 ? new TopicNotFoundError(topic) : protocolError(code)),
      this.options.metadataMaxAgeMs,
    );
  }

  /** The leader this reader fetches a partition from and its leader epoch (undefined before its topic was read). */
  leaderOf(topic: string, partition: number): { nodeId: number; leaderEpoch: number } | undefined {
    const l = this.leaders.get(topic, partition);
    return l && l.leader >= 0 ? { nodeId: l.leader, leaderEpoch: l.leaderEpoch } : undefined;
  }

  get state(): PlatformaticReaderState {
    return this.stateValue;
  }

  connect(): Promise<void> {
    if (this.stateValue === 'closed') return Promise.reject(this.closedError());
    if (!this.connecting) {
      this.stateValue = 'connecting';
      const attempt = this.wire()
        .then(() =>
          this.retrying('connect to Kafka', this.stop.signal, async () => {
            await this.loadMetadata([]); // learns the brokers (a metadata request of no topic: cheap)
          }),
        )
        .then(
          async () => {
            if (this.stateValue === 'closed') throw this.closedError();
            this.stateValue = 'connected';
          },
          (e: unknown) => {
            if (this.stateValue !== 'closed') {
              this.stateValue = 'idle';
              this.connecting = undefined;
            }
            throw e;
          },
        );
      this.connecting = attempt;
    }
    return this.connecting;
  }

  /** Loads the library (once) and makes the connection pools. */
  private async wire(): Promise<Wired> {
    if (this.wired) return this.wired;
    let plt: typeof Plt;
    try {
      plt = await import('@platformatic/kafka');
    } catch (e) {
      throw new ConfigError(
        'The platformatic reader needs @platformatic/kafka: npm install @platformatic/kafka (an optional peer dependency ' +
          'of @oncely/core; Node 22.22 or later), or use the kafkajs reader.',
        { cause: e },
      );
    }
    if (this.wired) return this.wired;
    const security = connectionSecurity(this.options);
    const base = { connectTimeout: this.options.connectionTimeoutMs, ...security };
    const pool = (requestTimeout: number) => {
      const p = new plt.ConnectionPool(this.options.clientId, { ...base, requestTimeout });
      // A connection that fails after connecting emits 'error' again; the pool listens once only.
      p.on('connect', ({ connection }) => connection.on('error', () => {}));
      return p;
    };
    this.wired = {
      apis: createApis(plt),
      control: pool(this.options.requestTimeoutMs),
      fetches: pool(NO_TIMEOUT),
    };
    return this.wired;
  }

  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.stateValue = 'closed';
    this.stop.abort();
    const wired = this.wired;
    if (!wired) return;
    // A long poll holds its connection: drop the sockets, then close the pools.
    for (const [, connection] of wired.fetches) connection.socket?.destroy();
    await Promise.all(
      [wired.fetches, wired.control].map((p) =>
        p.close().catch((e: unknown) => this.log.warn('closing Kafka connections failed', { error: toError(e) })),
      ),
    );
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

  /** Under read_committed, 'latest' is the last stable offset, as in the kafkajs reader. */
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
    const missing = [...found].filter(([, o]) => o < 0n).map(([p]) => p);
    if (missing.length > 0) {
      const ends = await this.listOffsets(topic, missing, LATEST, this.isolation());
      for (const [p, o] of ends) found.set(p, o);
    }
    return found;
  }

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
    // it: an aborted fetch drops the fetch connections it waits on; other fetches on them retry.
    const inflight = new Map<number, number>();
    const onAbort = () => {
      if (this.stateValue === 'closed') return;
      for (const nodeId of inflight.keys()) this.cutFetchConnection(nodeId);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await abortable(this.fetchEach(requests, maxWaitMs, signal, inflight, options), signal);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  private cutFetchConnection(nodeId: number): void {
    const address = this.brokerAddresses.get(nodeId);
    if (address) this.wired?.fetches.getEstablishedConnection(address)?.socket?.destroy();
  }

  private async fetchEach(
    requests: FetchRequest[],
    maxWaitMs: number,
    signal: AbortSignal,
    inflight: Map<number, number>,
    options: FetchOptions,
  ): Promise<FetchResult[]> {
    const results: FetchResult[] = new Array(requests.length);
    const call: FetchCall = { maxWaitMs, signal, inflight, anyData: false };
    const errors: OncelyError[] = [];
    const notify = (what: string, fn: () => void) => {
      if (signal.aborted) return;
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

  private async fetchPartition(r: FetchRequest, call: FetchCall): Promise<FetchResult> {
    const key = `${r.topic}/${r.partition}`;
    let lastError: Error | undefined;
    let staleSince: number | undefined;
    let damaged: { error: CorruptRecordBatchError; fetches: number } | undefined;
    for (let attempt = 0; ; attempt++) {
      if (call.signal.aborted) throw new AbortedError();
      let refresh = false;
      try {
        const outcome = await this.fetchOnce(r, call, attempt > 0 && call.anyData ? 0 : call.maxWaitMs, staleSince);
        if (!(outcome instanceof Error)) return outcome;
        lastError = outcome;
        refresh = needsRefresh(outcome);
      } catch (e) {
        const err = toError(e);
        if (call.signal.aborted) throw new AbortedError();
        if (err instanceof CorruptRecordBatchError) {
          damaged = { error: err, fetches: (damaged?.fetches ?? 0) + 1 };
          lastError = err;
        } else if (err instanceof OncelyError || !isRetriable(err) || authenticationFailure(err, this.options)) {
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
    call.inflight.set(lead.leader, (call.inflight.get(lead.leader) ?? 0) + 1);
    let p: FetchPartitionResponse | undefined;
    try {
      p = await this.laneOf(lead.leader).fetch({
        topic: r.topic,
        partition: r.partition,
        fetchOffset: r.offset,
        maxBytes: r.maxBytes ?? this.options.maxBytesPerPartition,
        currentLeaderEpoch: lead.leaderEpoch,
        maxWaitMs,
        signal: call.signal,
      });
    } finally {
      const n = (call.inflight.get(lead.leader) ?? 1) - 1;
      if (n > 0) call.inflight.set(lead.leader, n);
      else call.inflight.delete(lead.leader);
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

  private laneOf(nodeId: number): FetchLane {
    let lane = this.lanes.get(nodeId);
    if (!lane) {
      lane = new FetchLane((topics, maxWaitMs) => this.sendFetch(nodeId, topics, maxWaitMs));
      this.lanes.set(nodeId, lane);
    }
    return lane;
  }

  /** One Fetch v11 request to a leader, timed out after its long poll plus requestTimeoutMs (the socket is dropped then). */
  private async sendFetch(nodeId: number, topics: FetchTopic[], maxWaitMs: number): Promise<FetchResponse> {
    const { apis, fetches } = await this.wire();
    const address = this.brokerAddresses.get(nodeId);
    if (!address) throw new Glitch(`Broker ${nodeId} is not in the cluster's metadata.`);
    const connection = await fetches.get(address);
    const limit = Math.min(maxWaitMs + this.options.requestTimeoutMs, NO_TIMEOUT);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        connection.socket?.destroy();
        reject(new ConnectionGlitch(`Broker ${nodeId} did not answer a fetch within ${limit} ms.`));
      }, limit);
    });
    try {
      return await Promise.race([
        apis.fetch.async(
          connection,
          maxWaitMs,
          this.options.minBytes,
          this.options.maxBytes,
          this.isolation(),
          topics.map((t) => ({ topic: t.topic, partitions: t.partitions })),
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A connection to a broker (any broker when nodeId is undefined) from the control pool. */
  private async controlConnection(nodeId?: number): Promise<Plt.Connection> {
    const { control } = await this.wire();
    if (nodeId !== undefined) {
      const address = this.brokerAddresses.get(nodeId);
      if (!address) throw new Glitch(`Broker ${nodeId} is not in the cluster's metadata.`);
      return control.get(address);
    }
    const known = [...this.brokerAddresses.values()];
    return control.getFirstAvailable(known.length > 0 ? [...known, ...this.bootstrap] : this.bootstrap);
  }

  private async loadMetadata(topics: string[]): Promise<MetadataResponse> {
    const before = new Map(topics.map((t) => [t, this.leaders.partitions(t)?.map((p) => this.leaders.get(t, p)!)]));
    const { apis } = await this.wire();
    const md = await apis.metadata.async(await this.controlConnection(), topics);
    for (const b of md.brokers) {
      const known = this.brokerAddresses.get(b.nodeId);
      if (!known || known.host !== b.host || known.port !== b.port)
        this.brokerAddresses.set(b.nodeId, { host: b.host, port: b.port });
    }
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

  /** As the kafkajs reader: the log's bounds decide between out-of-range and a leader still catching up. */
  private async confirmOutOfRange(r: FetchRequest): Promise<FetchResult | Error> {
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
      const byLeader = new Map<number, number[]>();
      for (const p of partitions) {
        const leader = this.leaders.get(topic, p)?.leader;
        if (leader === undefined || leader < 0) throw new Glitch(`No leader known for ${topic}/${p}.`);
        byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
      }
      const { apis } = await this.wire();
      const out = new Map<number, bigint>();
      await Promise.all(
        [...byLeader].map(async ([leader, ps]) => {
          const answer = await apis.listOffsets.async(await this.controlConnection(leader), isolationLevel, topic, ps, timestamp);
          for (const p of answer.partitions) {
            if (p.errorCode !== 0) throw protocolError(p.errorCode);
            out.set(p.partition, p.offset);
          }
        }),
      );
      for (const p of partitions) if (!out.has(p)) throw new Glitch(`Broker gave no offset for ${topic}/${p}.`);
      return out;
    });
  }

  private async retrying<T>(what: string, signal: AbortSignal, op: (staleSince?: number) => Promise<T>): Promise<T> {
    let staleSince: number | undefined;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new AbortedError();
      try {
        return await op(staleSince);
      } catch (e) {
        const err = toError(e);
        if (signal.aborted) throw new AbortedError();
        if (err instanceof OncelyError || !isRetriable(err) || authenticationFailure(err, this.options)) {
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
    if (isRetriable(err)) return new KafkaUnavailableError(`Could not ${what}: ${err.message}`, { cause: err });
    return new KafkaProtocolError(`Could not ${what}: ${err.message}${errorType(err) ? ` (${errorType(err)})` : ''}.`, {
      cause: err,
    });
  }

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
