import { AbortedError, toError } from '../errors.js';
import type { PartitionReader } from '../reader/types.js';
import { RepeatGate } from '../repeat-gate.js';
import { KafkaAuthenticationError } from './errors.js';
import type { FetchLane } from './fetch-lane.js';
import {
  allBrokers,
  type BrokerFetch,
  createCluster,
  cutConnection,
  FETCH_CONNECTION,
  type KjsBroker,
  type KjsCluster,
  sendFetch,
  sendMetadata,
} from './internals.js';
import type { MetadataResponse } from './metadata.js';
import { type CompiledReaderOptions, compileReaderOptions, type KafkajsReaderOptions } from './options.js';
import type { FetchResponse } from './wire.js';
import { errorType, WireReader, type WireReaderState } from './wire-reader.js';

/** Lifecycle of a {@link KafkajsPartitionReader}. */
export type ReaderState = WireReaderState;

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
export class KafkajsPartitionReader extends WireReader<KjsBroker> implements PartitionReader {
  private readonly cluster: KjsCluster;
  protected override readonly lanes = new WeakMap<KjsBroker, FetchLane>();
  /** kafkajs's repeated errors and warnings: one line per change, repeats counted (flushed at close). */
  private readonly logGate = new RepeatGate();

  constructor(options: KafkajsReaderOptions) {
    super(compileReaderOptions(options), { component: 'kafka-reader' });
    this.cluster = createCluster(this.options, this.log, this.logGate);
  }

  protected override establish(): Promise<void> {
    return this.retrying('connect to Kafka', this.stop.signal, async () => {
      await this.cluster.connect();
      // kafkajs learns the other brokers from a metadata request (of no topic: cheap).
      await this.cluster.refreshMetadata();
    });
  }

  protected override async abandon(): Promise<void> {
    await this.cluster.disconnect().catch(() => {});
  }

  protected override async shutdown(): Promise<void> {
    // The connections' queues are emptied first, because kafkajs's disconnect would otherwise wait
    // for a pending long poll to come back.
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

  protected override brokerFor(nodeId: number): Promise<KjsBroker> {
    return this.cluster.findBroker({ nodeId });
  }

  protected override sendFetch(broker: KjsBroker, topics: BrokerFetch['topics'], maxWaitMs: number): Promise<FetchResponse> {
    return sendFetch(broker, {
      isolationLevel: this.isolation(),
      maxWaitMs,
      minBytes: this.options.minBytes,
      maxBytes: this.options.maxBytes,
      requestTimeoutMs: this.options.requestTimeoutMs,
      topics,
    });
  }

  protected override dropFetchConnections(brokers: Iterable<KjsBroker>): void {
    const reason = Object.assign(new Error('Fetch connection dropped: a fetch on it was aborted.'), {
      name: 'KafkaJSConnectionError',
      retriable: true,
    });
    for (const broker of brokers) {
      const connection = broker.connectionPool.pool[FETCH_CONNECTION];
      if (connection) cutConnection(connection, reason).catch(() => {});
    }
  }

  protected override async requestMetadata(topics: string[]): Promise<MetadataResponse> {
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
    return md;
  }

  protected override async requestOffsets(
    leader: number,
    topic: string,
    partitions: number[],
    timestamp: bigint,
    isolationLevel: number,
  ): Promise<Array<readonly [number, bigint]>> {
    const broker = await this.cluster.findBroker({ nodeId: leader });
    const { responses } = await broker.listOffsets({
      replicaId: -1,
      isolationLevel,
      topics: [{ topic, partitions: partitions.map((partition) => ({ partition, timestamp: timestamp.toString() })) }],
    });
    return responses.flatMap((t) => t.partitions.map((p) => [p.partition, BigInt(p.offset)] as const));
  }

  protected override isRetriable(err: Error): boolean {
    return isRetriableKafka(err);
  }

  protected override isClientFailure(err: Error): boolean {
    return RETRIABLE_NAMES.has(err.name);
  }

  protected override authenticationFailure(err: Error): KafkaAuthenticationError | undefined {
    return authenticationFailure(err, this.options);
  }
}
