/**
 * @oncely/core — exactly-once processing of Kafka records into a transactional store.
 *
 * ```ts
 * import { defineApp, json, createWorker } from '@oncely/core';
 * import { PostgresStore } from '@oncely/postgres-offsets';
 *
 * const app = defineApp({ group: 'ledger' }).handle({ topic: 'payments', codec: json<Payment>() }, async (msg, ctx) => {
 *   await ctx.tx('balances').insert({ account: msg.value.account, cents: msg.value.cents })
 *     .onConflict('account').merge({ cents: ctx.tx.raw('balances.cents + excluded.cents') });
 * });
 * ```
 *
 * Handlers run inside the store's transaction; the advance of the stored offset commits with
 * their writes, fenced by an epoch, so every record is applied exactly once.
 */
import 'reflect-metadata';

export type { HandlerClassMetadata } from './app/decorators.js';
export { HANDLER_CONTEXT, handlerMetadata, handles, handlesBatch, TRANSACTION } from './app/decorators.js';
export type { App, AppOptions } from './app/define-app.js';
export { defineApp } from './app/define-app.js';
export type {
  Batch,
  BatchHandler,
  BatchHandlerFn,
  DefaultTx,
  HandlerContainer,
  HandlerContext,
  HandlerDefinition,
  HandlerOptions,
  Message,
  MessageHandler,
  MessageHandlerFn,
  Newable,
  Register,
} from './app/types.js';
export type { Codec, CodecValue, JsonCodecOptions, Schema } from './codec/index.js';
export { json, raw, string } from './codec/index.js';
export type { OncelyErrorCode, OncelyErrorOptions } from './errors.js';
export {
  AbortedError,
  CircuitOpenError,
  CodecError,
  ConfigError,
  FencedError,
  IdleInTransactionError,
  isRetriable,
  KafkaUnavailableError,
  markLogged,
  NonRetriableError,
  OffsetOutOfRangeError,
  OncelyError,
  PartitionHeldError,
  PartitionReadError,
  PartitionStoppedError,
  RecordFailedError,
  StateError,
  StoreUnavailableError,
  TransactionEndedError,
  toError,
  WorkerCrashedError,
  wasLogged,
} from './errors.js';
export type { CompiledReaderOptions, IsolationLevel, KafkajsReaderOptions, ReaderState } from './kafkajs/index.js';
export {
  CompressionUnsupportedError,
  CorruptRecordBatchError,
  KafkaAuthenticationError,
  KafkajsPartitionReader,
  KafkaProtocolError,
  TopicNotFoundError,
  UnsupportedMessageFormatError,
} from './kafkajs/index.js';
export type { Logger, LogLevel, PinoLike } from './logger.js';
export { consoleLogger, pinoLogger, silentLogger } from './logger.js';
export type { Membership, MembershipContext } from './membership/index.js';
export type {
  GroupOffsetWriter,
  HealthReport,
  ObservabilityHandlerOptions,
  ObservabilityServer,
  OffsetMirror,
  OffsetMirrorOptions,
  WorkerHealth,
  WorkerHealthOptions,
  WorkerMetrics,
  WorkerMetricsOptions,
} from './observe/index.js';
export {
  createOffsetMirror,
  observabilityHandler,
  serveObservability,
  workerHealth,
  workerMetrics,
} from './observe/index.js';
export type { PlatformaticReaderOptions, PlatformaticReaderState } from './platformatic/index.js';
export { PlatformaticPartitionReader } from './platformatic/index.js';
export { classifyError, type ErrorClass, type ErrorSource, type StoreErrorClassifier } from './policy/classify.js';
export type {
  FetchedRecords,
  FetchOptions,
  FetchOutOfRange,
  FetchRequest,
  FetchResult,
  OffsetSpec,
  PartitionReader,
  RawRecord,
  TopicPartition,
} from './reader/index.js';
export { RepeatGate } from './repeat-gate.js';
export type {
  CommitInfo,
  DetachedRecord,
  FetchInfo,
  PartitionProgress,
  ProcessFailureHandling,
  SignalHandling,
  Stoppable,
  Worker,
  WorkerEvent,
  WorkerEventMap,
  WorkerListener,
  WorkerOptions,
  WorkerState,
} from './runtime/index.js';
export {
  applyRecordOnce,
  createWorker,
  handleSignals,
  StartTimeoutError,
  stopOnProcessFailure,
} from './runtime/index.js';
export type {
  BatchRange,
  Claim,
  ClaimInput,
  CrashEvidence,
  DeadLetter,
  HeartbeatOptions,
  LiveWorker,
  OffsetRange,
  PartitionKey,
  PartitionState,
  RunBatchOptions,
  TransactionalStore,
  WorkerHeartbeat,
} from './store/index.js';
export { pgText } from './text.js';
