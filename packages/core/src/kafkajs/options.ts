import type { ConnectionOptions } from 'node:tls';
import type { Mechanism, SASLOptions } from 'kafkajs';
import { ConfigError } from '../errors.js';
import { consoleLogger, type Logger, type LogLevel } from '../logger.js';

/** Which records a fetch may see: only committed transactional data, or everything written. */
export type IsolationLevel = 'read_committed' | 'read_uncommitted';

/** Options of {@link KafkajsPartitionReader}. Only `brokers` is required. */
export interface KafkajsReaderOptions {
  /** Bootstrap brokers, `host:port`. Required, at least one. */
  brokers: string[];
  /** Client id the brokers see in their logs and quotas. Default `'oncely'`. */
  clientId?: string;
  /** TLS: `true` or Node's `tls.ConnectionOptions`, passed to kafkajs as is. Default: plain TCP. */
  ssl?: boolean | ConnectionOptions;
  /** SASL settings, passed to kafkajs as is; never logged. Default: no SASL. */
  sasl?: SASLOptions | Mechanism;
  /**
   * `'read_committed'` (default) returns only committed transactional records and stops at the last
   * stable offset; `'read_uncommitted'` returns everything up to the high watermark, aborted
   * transactions included.
   */
  isolationLevel?: IsolationLevel;
  /** How long the broker holds a fetch open when no data is there (long poll), unless a fetch says otherwise. Default 500 ms. */
  maxWaitMs?: number;
  /** The broker answers as soon as this many bytes are there (or maxWaitMs passed). Default 1. */
  minBytes?: number;
  /** Default bytes per partition per fetch (the broker still returns one oversized batch whole). Default 1 MiB. */
  maxBytesPerPartition?: number;
  /** Upper bound of bytes of one fetch response (per broker request). Default 50 MiB. */
  maxBytes?: number;
  /** Time to open a TCP (and TLS) connection to a broker. Default 3000 ms. */
  connectionTimeoutMs?: number;
  /** Time a broker has to answer a request; fetches get this on top of their long poll. Default 30000 ms. */
  requestTimeoutMs?: number;
  /**
   * How many times an operation is retried after a retriable failure (leader moved, connection lost)
   * before it fails with KafkaUnavailableError; a record batch that fails its CRC-32C check is
   * fetched again as many times before the fetch fails with CorruptRecordBatchError. Default 5.
   */
  retries?: number;
  /** First back-off between retries; it doubles each time up to retryBackoffMaxMs. Default 100 ms. */
  retryBackoffMs?: number;
  /** Longest back-off between retries. Default 5000 ms. */
  retryBackoffMaxMs?: number;
  /** How old cached metadata (leaders) may get before it is reloaded. Default 300000 ms. */
  metadataMaxAgeMs?: number;
  /** Where the reader and kafkajs log. Default: `consoleLogger()`. */
  logger?: Logger;
  /** The lowest kafkajs log level passed to `logger` (kafkajs is chatty at info). Default `'warn'`. */
  kafkajsLogLevel?: LogLevel | 'nothing';
}

/** {@link KafkajsReaderOptions} with defaults applied and checked; frozen. */
export interface CompiledReaderOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly ssl: boolean | ConnectionOptions | undefined;
  readonly sasl: SASLOptions | Mechanism | undefined;
  readonly isolationLevel: IsolationLevel;
  readonly maxWaitMs: number;
  readonly minBytes: number;
  readonly maxBytesPerPartition: number;
  readonly maxBytes: number;
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly retries: number;
  readonly retryBackoffMs: number;
  readonly retryBackoffMaxMs: number;
  readonly metadataMaxAgeMs: number;
  readonly logger: Logger;
  readonly kafkajsLogLevel: LogLevel | 'nothing';
}

const INT32_MAX = 2 ** 31 - 1;

function int(name: string, value: unknown, fallback: number, min: number, max = INT32_MAX): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`Reader option ${name} must be an integer between ${min} and ${max}; got ${String(value)}.`);
  }
  return value;
}

/** Validates reader options once and applies the defaults; a bad option throws a ConfigError naming it. */
export function compileReaderOptions(options: KafkajsReaderOptions): CompiledReaderOptions {
  if (options === null || typeof options !== 'object') {
    throw new ConfigError('Reader options must be an object with at least `brokers`.');
  }
  const { brokers } = options;
  if (!Array.isArray(brokers) || brokers.length === 0) {
    throw new ConfigError('Reader option brokers must be a non-empty array of "host:port" strings (e.g. from KAFKA_BROKERS).');
  }
  for (const b of brokers) {
    if (typeof b !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(b)) {
      throw new ConfigError(`Reader option brokers has ${JSON.stringify(b)}; each broker must be "host:port".`);
    }
  }
  const clientId = options.clientId ?? 'oncely';
  if (typeof clientId !== 'string' || clientId.length === 0) {
    throw new ConfigError('Reader option clientId must be a non-empty string.');
  }
  const isolationLevel = options.isolationLevel ?? 'read_committed';
  if (isolationLevel !== 'read_committed' && isolationLevel !== 'read_uncommitted') {
    throw new ConfigError(
      `Reader option isolationLevel must be 'read_committed' or 'read_uncommitted'; got ${String(isolationLevel)}.`,
    );
  }
  const kafkajsLogLevel = options.kafkajsLogLevel ?? 'warn';
  if (!['debug', 'info', 'warn', 'error', 'nothing'].includes(kafkajsLogLevel)) {
    throw new ConfigError(
      `Reader option kafkajsLogLevel must be debug, info, warn, error or nothing; got ${String(kafkajsLogLevel)}.`,
    );
  }
  const logger = options.logger ?? consoleLogger();
  if (typeof logger.warn !== 'function' || typeof logger.child !== 'function') {
    throw new ConfigError('Reader option logger must implement the Logger interface (debug, info, warn, error, child).');
  }
  if (options.ssl !== undefined && typeof options.ssl !== 'boolean' && typeof options.ssl !== 'object') {
    throw new ConfigError('Reader option ssl must be a boolean or tls.ConnectionOptions.');
  }
  if (options.sasl !== undefined && (options.sasl === null || typeof options.sasl !== 'object')) {
    // The value is never echoed: it holds credentials.
    throw new ConfigError('Reader option sasl must be an object (kafkajs SASL options).');
  }

  const maxBytesPerPartition = int('maxBytesPerPartition', options.maxBytesPerPartition, 1024 * 1024, 1);
  const maxBytes = int('maxBytes', options.maxBytes, 50 * 1024 * 1024, 1);
  if (maxBytes < maxBytesPerPartition) {
    throw new ConfigError(
      `Reader option maxBytes (${maxBytes}) must be at least maxBytesPerPartition (${maxBytesPerPartition}).`,
    );
  }
  const retryBackoffMs = int('retryBackoffMs', options.retryBackoffMs, 100, 0, 60_000);
  const retryBackoffMaxMs = int('retryBackoffMaxMs', options.retryBackoffMaxMs, 5_000, 0, 600_000);
  if (retryBackoffMaxMs < retryBackoffMs) {
    throw new ConfigError(
      `Reader option retryBackoffMaxMs (${retryBackoffMaxMs}) must be at least retryBackoffMs (${retryBackoffMs}).`,
    );
  }

  return Object.freeze({
    brokers: Object.freeze([...brokers]),
    clientId,
    ssl: options.ssl,
    sasl: options.sasl,
    isolationLevel,
    maxWaitMs: int('maxWaitMs', options.maxWaitMs, 500, 0),
    minBytes: int('minBytes', options.minBytes, 1, 0),
    maxBytesPerPartition,
    maxBytes,
    connectionTimeoutMs: int('connectionTimeoutMs', options.connectionTimeoutMs, 3_000, 1),
    requestTimeoutMs: int('requestTimeoutMs', options.requestTimeoutMs, 30_000, 1),
    retries: int('retries', options.retries, 5, 0, 1000),
    retryBackoffMs,
    retryBackoffMaxMs,
    metadataMaxAgeMs: int('metadataMaxAgeMs', options.metadataMaxAgeMs, 300_000, 0),
    logger,
    kafkajsLogLevel,
  });
}
