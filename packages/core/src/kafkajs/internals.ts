/**
 * The only place that touches kafkajs internals (its Cluster, Broker and connection objects and
 * its Fetch v11 request encoder), which have no public types: the interfaces below declare just
 * what oncely uses. kafkajs is pinned to an exact version (2.2.4) for this reason; the reader
 * contract suite in test/kafka/ runs against a real broker and catches a kafkajs change.
 *
 * How a Cluster is obtained without joining a group: `kafka.consumer({ partitionAssigners })`
 * calls each assigner factory with the consumer's Cluster when the consumer is created. The
 * consumer itself is never connected, subscribed or run, so no group is joined and nothing is
 * committed to Kafka.
 */
import { createRequire } from 'node:module';
import { Kafka, type LogEntry, logLevel, type PartitionAssigner } from 'kafkajs';
import type { Logger } from '../logger.js';
import { RepeatGate } from '../repeat-gate.js';
import { KafkaProtocolError } from './errors.js';
import { decodeMetadataResponseV7, type MetadataResponse } from './metadata.js';
import type { CompiledReaderOptions } from './options.js';
import { decodeFetchResponseV11, type FetchResponse } from './wire.js';

const require = createRequire(import.meta.url);

/**
 * kafkajs 2.2.4 arms its request queue's throttle timer with `throttledUntil - Date.now()` even
 * when nothing is throttled (`throttledUntil` starts at -1), a large negative delay. Node 24 warns
 * about it on every connection (`TimeoutNegativeWarning: -1796… is a negative number`, kafkajs
 * issue #1751, unfixed upstream) and runs the timer after 1 ms. The method is replaced by the same
 * logic with the delay clamped at 0: what Node did anyway, without the warning. (Moving
 * `throttledUntil` up to now was not enough: the method reads the clock again, and a millisecond
 * later the delay was -1, which still warned.) Applied once per kafkajs copy.
 */
const patched = Symbol.for('oncely.kafkajs.quietNegativeThrottleTimer');
/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL (requestQueue/index.js). */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;
interface KjsRequestQueue {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}
function quietNegativeThrottleTimer(): void {
  const { prototype } = require('kafkajs/src/network/requestQueue/index.js') as {
    prototype: KjsRequestQueue & { [patched]?: true };
  };
  if (prototype[patched]) return;
  prototype.scheduleCheckPendingRequests = function (this: KjsRequestQueue) {
    let scheduleAt = Math.max(0, this.throttledUntil - Date.now());
    if (!this.throttleCheckTimeoutId) {
      if (this.pending.length > 0) scheduleAt = scheduleAt > 0 ? scheduleAt : CHECK_PENDING_REQUESTS_INTERVAL_MS;
      this.throttleCheckTimeoutId = setTimeout(() => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      }, scheduleAt);
    }
  };
  prototype[patched] = true;
}
quietNegativeThrottleTimer();

/**
 * kafkajs 2.2.4's Connection#disconnect calls `socket.unref()` on the socket of its last connect
 * attempt even when that attempt failed: Node's unref of a socket that has no handle waits for a
 * 'connect' that never comes by adding a listener. A broker down for a few seconds adds one per
 * attempt to the same dead socket, and Node prints `MaxListenersExceededWarning: … 11 connect
 * listeners added to [Socket]`. A destroyed socket has nothing to end or unref: it is dropped first.
 */
const quietDisconnect = Symbol.for('oncely.kafkajs.noUnrefOfDeadSocket');
function noUnrefOfDeadSocket(): void {
  const { prototype } = require('kafkajs/src/network/connection.js') as {
    prototype: { socket?: { destroyed?: boolean } | null; disconnect(): Promise<unknown>; [quietDisconnect]?: true };
  };
  if (prototype[quietDisconnect]) return;
  const disconnect = prototype.disconnect;
  prototype.disconnect = function (this: { socket?: { destroyed?: boolean } | null }) {
    if (this.socket?.destroyed) this.socket = null;
    return disconnect.call(this);
  };
  prototype[quietDisconnect] = true;
}
noUnrefOfDeadSocket();

/** One TCP connection of a kafkajs broker. */
export interface KjsConnection {
  isConnected(): boolean;
  /** Rejects every queued and in-flight request of this connection. */
  rejectRequests(error: Error): void;
  disconnect(): Promise<unknown>;
  socket?: { destroy(): void } | null;
}

/** A request as kafkajs's Connection#send takes it. */
interface KjsProtocolRequest<T> {
  request: { apiKey: number; apiVersion: number; apiName: string; encode(): Promise<unknown> };
  response: { decode(payload: Buffer): Promise<T>; parse(decoded: T): Promise<T> };
  requestTimeout?: number;
  logResponseError?: boolean;
}

/** A kafkajs broker: pool[0] carries metadata and list-offsets, pool[1] carries fetches. */
export interface KjsBroker {
  nodeId: number | null;
  versions: Record<number, { minVersion: number; maxVersion: number }> | null;
  connectionPool: {
    pool: KjsConnection[];
    host: string;
    port: number;
    send<T>(request: KjsProtocolRequest<T>): Promise<T>;
  };
  isConnected(): boolean;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  listOffsets(args: {
    replicaId?: number;
    isolationLevel: number;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; timestamp: string }> }>;
  }): Promise<{
    responses: Array<{ topic: string; partitions: Array<{ partition: number; errorCode: number; offset: string }> }>;
  }>;
}

/** The kafkajs Cluster: metadata, brokers by node id, shared connections. */
export interface KjsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Reloads the broker list (kafkajs's metadata of no topic: oncely keeps partition leaders itself). */
  refreshMetadata(): Promise<void>;
  findBroker(args: { nodeId: number }): Promise<KjsBroker>;
  brokerPool: {
    brokers: Record<string, KjsBroker>;
    seedBroker?: KjsBroker;
    /** A connected broker (connecting one, the seed broker last, when none is). */
    findConnectedBroker(): Promise<KjsBroker>;
  };
}

const levels: Record<string, number> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};

/**
 * Routes kafkajs log lines to oncely's Logger; drops fields that could carry credentials. Errors
 * and warnings go through `gate`: kafkajs logs every failed attempt of an outage (~1,000 lines per
 * worker for a broker down a few seconds), so a line is logged when it first appears and its
 * repeats are counted into one line per window (`… (N repeats suppressed)`).
 */
function logCreator(logger: Logger, gate: RepeatGate) {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _t, logger: _l, sasl: _s, ...fields } = log as unknown as Record<string, unknown>;
      const line = `kafkajs ${namespace}: ${String(message)}`;
      if (level === logLevel.ERROR || level === logLevel.WARN) {
        const write = level === logLevel.ERROR ? logger.error.bind(logger) : logger.warn.bind(logger);
        // Fields that change on every attempt (retry counts, correlation ids) are not part of the key.
        const key = `${level} ${namespace} ${String(message)} ${String(fields.broker ?? '')}`;
        if (gate.pass(key, (n) => write(`${line} (${n} repeats suppressed)`, fields))) write(line, fields);
      } else if (level === logLevel.INFO) logger.info(line, fields);
      else logger.debug(line, fields);
    };
}

/** Builds a kafkajs Cluster for the options, not yet connected. */
export function createCluster(options: CompiledReaderOptions, logger: Logger, gate = new RepeatGate()): KjsCluster {
  const kafka = new Kafka({
    brokers: [...options.brokers],
    clientId: options.clientId,
    ssl: options.ssl,
    sasl: options.sasl,
    connectionTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    // Retries are the reader's job (one budget, with metadata refresh); kafkajs's own retrier
    // would multiply them.
    retry: { retries: 0 },
    logLevel: levels[options.kafkajsLogLevel] ?? logLevel.WARN,
    logCreator: logCreator(logger, gate),
  });
  let cluster: KjsCluster | undefined;
  const capture: PartitionAssigner = ({ cluster: c }) => {
    cluster = c as unknown as KjsCluster;
    return {
      name: 'oncely-never-used',
      version: 0,
      assign: async () => [],
      protocol: () => ({ name: 'oncely-never-used', metadata: Buffer.alloc(0) }),
    };
  };
  kafka.consumer({
    // Required by kafkajs, never used: this consumer is not connected, so it joins no group.
    groupId: 'oncely-reader-never-joins',
    partitionAssigners: [capture],
    allowAutoTopicCreation: false,
    metadataMaxAge: options.metadataMaxAgeMs,
    readUncommitted: options.isolationLevel === 'read_uncommitted',
  });
  if (!cluster) {
    throw new KafkaProtocolError('kafkajs did not hand its Cluster to the partition assigner; is kafkajs pinned to 2.2.4?');
  }
  return cluster;
}

const FETCH_API_KEY = 1;
const FETCH_VERSION = 11;

type FetchV11Request = (args: {
  replicaId: number;
  maxWaitTime: number;
  minBytes: number;
  maxBytes: number;
  isolationLevel: number;
  topics: Array<{
    topic: string;
    partitions: Array<{ partition: number; currentLeaderEpoch: number; fetchOffset: string; maxBytes: number }>;
  }>;
}) => KjsProtocolRequest<FetchResponse>['request'];

const fetchV11Request = require('kafkajs/src/protocol/requests/fetch/v11/request') as FetchV11Request;

/** What one broker fetch asks for. */
export interface BrokerFetch {
  isolationLevel: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  requestTimeoutMs: number;
  topics: Array<{
    topic: string;
    /** `currentLeaderEpoch` -1 skips the broker's epoch check. */
    partitions: Array<{ partition: number; currentLeaderEpoch: number; fetchOffset: bigint; maxBytes: number }>;
  }>;
}

/**
 * Sends one Fetch v11 to a broker on its fetch connection and decodes the answer without
 * throwing for partition errors (those are the caller's to sort out per partition).
 */
export async function sendFetch(broker: KjsBroker, f: BrokerFetch): Promise<FetchResponse> {
  const v = broker.versions?.[FETCH_API_KEY];
  if (!v || v.maxVersion < FETCH_VERSION || v.minVersion > FETCH_VERSION) {
    throw new KafkaProtocolError(
      `Broker ${broker.nodeId} does not support Fetch v${FETCH_VERSION} (it offers v${v?.minVersion}..v${v?.maxVersion}); oncely needs Kafka 2.3 or newer.`,
    );
  }
  const request = fetchV11Request({
    replicaId: -1,
    maxWaitTime: f.maxWaitMs,
    minBytes: f.minBytes,
    maxBytes: f.maxBytes,
    isolationLevel: f.isolationLevel,
    topics: f.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        currentLeaderEpoch: p.currentLeaderEpoch,
        fetchOffset: p.fetchOffset.toString(),
        maxBytes: p.maxBytes,
      })),
    })),
  });
  try {
    return await broker.connectionPool.send({
      request,
      response: { decode: async (payload) => decodeFetchResponseV11(payload), parse: async (d) => d },
      requestTimeout: f.maxWaitMs + f.requestTimeoutMs,
    });
  } catch (e) {
    // As kafkajs's Broker does: a closed connection is dropped so the next request reconnects.
    if (e instanceof Error && e.name === 'KafkaJSConnectionClosedError') await broker.disconnect().catch(() => {});
    throw e;
  }
}

const METADATA_API_KEY = 3;
const METADATA_VERSION = 7;

type MetadataV4Request = (args: { topics: string[]; allowAutoTopicCreation: boolean }) => KjsProtocolRequest<unknown>['request'];

// v5..v7 requests are encoded as v4 (kafkajs does the same for its v5 and v6); v7's response adds leader_epoch.
const metadataV4Request = require('kafkajs/src/protocol/requests/metadata/v4/request') as MetadataV4Request;

/**
 * Sends one Metadata v7 request for these topics (never creating one) on the broker's general
 * connection. Topic and partition errors are in the response, not thrown.
 */
export async function sendMetadata(broker: KjsBroker, topics: string[], requestTimeoutMs: number): Promise<MetadataResponse> {
  const v = broker.versions?.[METADATA_API_KEY];
  if (!v || v.maxVersion < METADATA_VERSION || v.minVersion > METADATA_VERSION) {
    throw new KafkaProtocolError(
      `Broker ${broker.nodeId} does not support Metadata v${METADATA_VERSION} (it offers v${v?.minVersion}..v${v?.maxVersion}); oncely needs Kafka 2.3 or newer.`,
    );
  }
  const request = Object.assign(metadataV4Request({ topics, allowAutoTopicCreation: false }), { apiVersion: METADATA_VERSION });
  return broker.connectionPool
    .send<MetadataResponse>({
      request,
      response: { decode: async (payload) => decodeMetadataResponseV7(payload), parse: async (d) => d },
      requestTimeout: requestTimeoutMs,
    })
    .catch(async (e: unknown) => {
      // As kafkajs's Broker does: a closed connection is dropped so the next request reconnects.
      if (e instanceof Error && e.name === 'KafkaJSConnectionClosedError') await broker.disconnect().catch(() => {});
      throw e;
    });
}

/** Every broker object the cluster holds, seed included. */
export function allBrokers(cluster: KjsCluster): KjsBroker[] {
  const set = new Set<KjsBroker>(Object.values(cluster.brokerPool.brokers));
  if (cluster.brokerPool.seedBroker) set.add(cluster.brokerPool.seedBroker);
  return [...set];
}

type KafkajsErrorFromCode = (code: number) => Error & { type: string; retriable: boolean };

/** kafkajs's error for a protocol error code (with its `type` name and `retriable` flag). */
export const protocolError = (require('kafkajs/src/protocol/error') as { createErrorFromCode: KafkajsErrorFromCode })
  .createErrorFromCode;

/**
 * Drops a connection now, with its queued and in-flight requests (they reject with `reason`):
 * Kafka cannot cancel a long poll, and kafkajs's disconnect would wait for it. The socket is
 * destroyed first so that a late answer is not read (kafkajs would log "Response without match").
 * The connection reconnects on its next request.
 */
export async function cutConnection(connection: KjsConnection, reason: Error): Promise<void> {
  connection.rejectRequests(reason);
  connection.socket?.destroy();
  await connection.disconnect();
}

/** Index of the fetch connection in a kafkajs broker's connection pool (see ConnectionPool#getConnectionByRequest). */
export const FETCH_CONNECTION = 1;
