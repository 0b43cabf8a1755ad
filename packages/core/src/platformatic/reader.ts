import type * as Plt from '@platformatic/kafka';
import { ConfigError, toError } from '../errors.js';
import { KafkaAuthenticationError } from '../kafkajs/errors.js';
import type { FetchLane } from '../kafkajs/fetch-lane.js';
import { protocolError } from '../kafkajs/internals.js';
import type { MetadataResponse } from '../kafkajs/metadata.js';
import type { CompiledReaderOptions } from '../kafkajs/options.js';
import type { FetchResponse } from '../kafkajs/wire.js';
import { errorType, Glitch, WireReader, type WireReaderState } from '../kafkajs/wire-reader.js';
import type { PartitionReader } from '../reader/types.js';
import { compilePlatformaticOptions, type PlatformaticReaderOptions } from './options.js';
import { type Apis, createApis, type FetchTopic } from './protocol.js';
import { connectionSecurity } from './security.js';

/** Lifecycle of a {@link PlatformaticPartitionReader}. */
export type PlatformaticReaderState = WireReaderState;

/** The library's per-connection request timeout is switched off on fetch connections: each fetch times itself. */
const NO_TIMEOUT = 2 ** 31 - 1;

/** A connection-level trouble: retriable, and a reason to reload metadata (the broker may be gone). */
class ConnectionGlitch extends Error {
  readonly retriable = true;
  readonly type = 'CONNECTION';
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

function parseBroker(hostPort: string): Plt.Broker {
  const i = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, i), port: Number(hostPort.slice(i + 1)) };
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
export class PlatformaticPartitionReader extends WireReader<number> implements PartitionReader {
  private wired: Wired | undefined;
  /** Fetch lanes by leader's node id. */
  protected override readonly lanes = new Map<number, FetchLane>();
  /** Node id → address, from the latest metadata (seeded by nothing: the bootstrap list is used until then). */
  private readonly brokerAddresses = new Map<number, Plt.Broker>();
  private readonly bootstrap: Plt.Broker[];

  constructor(options: PlatformaticReaderOptions) {
    super(compilePlatformaticOptions(options), { component: 'kafka-reader', reader: 'platformatic' });
    this.bootstrap = this.options.brokers.map(parseBroker);
  }

  protected override establish(): Promise<void> {
    return this.wire().then(() =>
      this.retrying('connect to Kafka', this.stop.signal, async () => {
        await this.loadMetadata([]); // learns the brokers (a metadata request of no topic: cheap)
      }),
    );
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

  protected override async shutdown(): Promise<void> {
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

  protected override async brokerFor(nodeId: number): Promise<number> {
    return nodeId;
  }

  protected override dropFetchConnections(nodeIds: Iterable<number>): void {
    for (const nodeId of nodeIds) {
      const address = this.brokerAddresses.get(nodeId);
      if (address) this.wired?.fetches.getEstablishedConnection(address)?.socket?.destroy();
    }
  }

  /** One Fetch v11 request to a leader, timed out after its long poll plus requestTimeoutMs (the socket is dropped then). */
  protected override async sendFetch(nodeId: number, topics: FetchTopic[], maxWaitMs: number): Promise<FetchResponse> {
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

  protected override async requestMetadata(topics: string[]): Promise<MetadataResponse> {
    const { apis } = await this.wire();
    const md = await apis.metadata.async(await this.controlConnection(), topics);
    for (const b of md.brokers) {
      const known = this.brokerAddresses.get(b.nodeId);
      if (!known || known.host !== b.host || known.port !== b.port)
        this.brokerAddresses.set(b.nodeId, { host: b.host, port: b.port });
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
    const { apis } = await this.wire();
    const answer = await apis.listOffsets.async(
      await this.controlConnection(leader),
      isolationLevel,
      topic,
      partitions,
      timestamp,
    );
    return answer.partitions.map((p) => {
      if (p.errorCode !== 0) throw protocolError(p.errorCode);
      return [p.partition, p.offset] as const;
    });
  }

  protected override isRetriable(err: Error): boolean {
    return isRetriable(err);
  }

  protected override isClientFailure(err: Error): boolean {
    return isConnectionError(err);
  }

  protected override authenticationFailure(err: Error): KafkaAuthenticationError | undefined {
    return authenticationFailure(err, this.options);
  }
}
