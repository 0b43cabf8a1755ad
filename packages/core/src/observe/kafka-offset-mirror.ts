/**
 * Mirrors a group's positions into Kafka's own group offsets, so `kafka-consumer-groups --describe`
 * and lag exporters show oncely's lag. Postgres stays the only source of truth: nothing ever reads
 * these offsets back.
 *
 * The mirror is a listener of the worker's `commit` event and never sits on the commit path: a
 * commit only records its position in memory; a background write (kafkajs `admin.setOffsets`)
 * sends the latest positions, at most one write in flight, later commits coalescing into the next
 * write. `setOffsets` works for a group with no members, which a mirror group always is: oncely
 * never joins consumer groups. Do not point it at a group that real Kafka consumers use.
 */
import { ConfigError, toError } from '../errors.js';
import { createGroupOffsetWriter, type GroupOffsetWriter, type GroupOffsetWriterOptions } from '../kafkajs/group-offsets.js';
import { consoleLogger, type Logger } from '../logger.js';
import type { CommitInfo } from '../runtime/events.js';

/** Options of {@link createOffsetMirror}. */
export interface OffsetMirrorOptions {
  /** Bootstrap brokers, `host:port`. Required unless `writer` is given. */
  brokers?: string[];
  /** The Kafka consumer group id whose committed offsets mirror oncely's positions. Required. */
  groupId: string;
  /** Client id the brokers see. Default `'oncely-mirror'`. */
  clientId?: string;
  /** TLS, passed to kafkajs as is. Default: plain TCP. */
  ssl?: GroupOffsetWriterOptions['ssl'];
  /** SASL, passed to kafkajs as is; never logged. Default: none. */
  sasl?: GroupOffsetWriterOptions['sasl'];
  /** Writes the offsets. Default: a kafkajs admin client on `brokers`. */
  writer?: GroupOffsetWriter;
  /** Where failed writes are reported (as warnings: a mirror failure never stops a worker). Default `consoleLogger()`. */
  logger?: Logger;
}

/** What {@link createOffsetMirror} returns: a commit hook and its lifecycle. */
export interface OffsetMirror {
  /** A `commit` listener: `worker.on('commit', mirror.onCommit)`. Records the position and schedules a write; returns at once. */
  readonly onCommit: (info: CommitInfo) => void;
  /** Resolves once every position recorded so far has been written (or its write failed). */
  flush(): Promise<void>;
  /** Flushes, then disconnects. Idempotent; later commits are ignored. */
  close(): Promise<void>;
  /** Writes that failed so far (each is logged). */
  readonly failures: number;
  /** Successful setOffsets rounds so far. */
  readonly writes: number;
}

/**
 * Creates a mirror of committed positions into Kafka group `groupId`.
 *
 * @example
 * const mirror = createOffsetMirror({ brokers, groupId: 'ledger-mirror' });
 * const worker = createWorker(app, { store, reader });
 * worker.on('commit', mirror.onCommit);
 * await worker.done; await mirror.close();
 */
export function createOffsetMirror(options: OffsetMirrorOptions): OffsetMirror {
  if (!options.writer && (!Array.isArray(options.brokers) || options.brokers.length === 0)) {
    throw new ConfigError('Offset mirror needs brokers (host:port) to write group offsets to.');
  }
  if (typeof options.groupId !== 'string' || options.groupId.length === 0) {
    throw new ConfigError('Offset mirror needs a non-empty groupId (e.g. --mirror-group-id ledger-mirror).');
  }
  const logger = (options.logger ?? consoleLogger()).child({ mirrorGroup: options.groupId });
  const writer =
    options.writer ??
    createGroupOffsetWriter({
      brokers: options.brokers!,
      clientId: options.clientId ?? 'oncely-mirror',
      ssl: options.ssl,
      sasl: options.sasl,
    });
  /** Latest position per topic and partition not yet written. */
  let pending = new Map<string, Map<number, bigint>>();
  let inFlight: Promise<void> | undefined;
  let closed: Promise<void> | undefined;
  let failures = 0;
  let writes = 0;

  const writeOnce = async (batch: Map<string, Map<number, bigint>>) => {
    try {
      for (const [topic, parts] of batch) await writer.setOffsets(options.groupId, topic, parts);
      writes++;
    } catch (e) {
      failures++;
      // Positions of a failed write are kept unless a newer commit replaced them: the next write retries them.
      for (const [topic, parts] of batch) {
        const now = pending.get(topic) ?? new Map<number, bigint>();
        for (const [p, o] of parts) if (!now.has(p)) now.set(p, o);
        pending.set(topic, now);
      }
      logger.warn('could not mirror positions to Kafka group offsets; will retry with the next commit', {
        error: toError(e).message,
      });
      throw e;
    }
  };

  /** Drains `pending`, one write at a time; returns the loop's promise. */
  const pump = (): Promise<void> => {
    if (inFlight) return inFlight;
    let failed = false;
    inFlight = (async () => {
      while (pending.size > 0) {
        const batch = pending;
        pending = new Map();
        try {
          await writeOnce(batch);
        } catch {
          failed = true;
          break; // retried on the next commit or flush, not in a tight loop
        }
      }
    })().finally(() => {
      inFlight = undefined;
      // A commit that arrived after the loop's last check but before this callback would wait for the next commit.
      if (!failed && pending.size > 0) void pump();
    });
    return inFlight;
  };

  const onCommit = (info: CommitInfo) => {
    if (closed) return;
    let parts = pending.get(info.topic);
    if (!parts) {
      parts = new Map();
      pending.set(info.topic, parts);
    }
    parts.set(info.partition, info.nextOffset);
    void pump();
  };

  const flush = async () => {
    // Bounded: a broker that keeps failing must not hold up a shutdown forever.
    for (let round = 0; round < 4; round++) {
      if (inFlight) await inFlight;
      else if (pending.size > 0) await pump();
      else return;
    }
  };

  return {
    onCommit,
    flush,
    close() {
      closed ??= (async () => {
        await flush().catch(() => {});
        await writer.close().catch(() => {});
      })();
      return closed;
    },
    get failures() {
      return failures;
    },
    get writes() {
      return writes;
    },
  };
}
