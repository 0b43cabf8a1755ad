import type { Codec } from '../codec/types.js';
import type { Logger } from '../logger.js';
import type { RetryPolicy } from '../policy/retry-policy.js';
import type { RawRecord } from '../reader/types.js';

/**
 * Declaration-merging hook that fixes the transaction type for the whole program. A store package
 * registers its own, e.g. @oncely/postgres-offsets does
 * `declare module '@oncely/core' { interface Register { tx: Knex.Transaction } }`, so that
 * `ctx.tx` is a Knex.Transaction in every handler without a type argument.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging
export interface Register {}

/** The transaction type handlers receive: the registered one, or unknown. */
export type DefaultTx = Register extends { tx: infer T } ? T : unknown;

/** One Kafka record, decoded. */
export interface Message<T> {
  topic: string;
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: T;
  headers: ReadonlyArray<readonly [name: string, value: Buffer | null]>;
  timestamp: Date;
  /** Stable id `topic/partition/offset`: deduplicates effects outside the transaction. */
  id: string;
  /** The record as fetched (bytes), for dead letters and logging. */
  raw: RawRecord;
}

/** The records of one partition that a batch handler applies in one transaction. */
export interface Batch<T> {
  topic: string;
  partition: number;
  messages: ReadonlyArray<Message<T>>;
  /** The partition's high watermark when the batch was fetched (lag = highWatermark - nextOffset). */
  highWatermark: bigint;
}

/** What a handler gets besides the record(s). */
export interface HandlerContext<Tx = DefaultTx> {
  /** The batch's transaction: write through it and your writes commit with the offset, or not at all. */
  tx: Tx;
  /** Aborts when the worker stops hard or loses the partition; pass it to long calls. */
  signal: AbortSignal;
  logger: Logger;
  /**
   * True when this group applied the record (for a batch: any record of it) before, and a rewind
   * brought it back. Records the group never applied (skipped by a reset or by starting at
   * 'latest', dead-lettered) are not replays.
   */
  isReplay: boolean;
  group: string;
  workerId: string;
  /** 1 on the first try of this batch, then 2, 3… after retries. */
  attempt: number;
}

export type MessageHandlerFn<T, Tx = DefaultTx> = (message: Message<T>, ctx: HandlerContext<Tx>) => Promise<void> | void;
export type BatchHandlerFn<T, Tx = DefaultTx> = (batch: Batch<T>, ctx: HandlerContext<Tx>) => Promise<void> | void;

/** A class handler for one record at a time (see `@handles`). */
export interface MessageHandler<T, Tx = DefaultTx> {
  handle(message: Message<T>, ctx: HandlerContext<Tx>): Promise<void> | void;
}

/** A class handler for a whole batch (see `@handlesBatch`). */
export interface BatchHandler<T, Tx = DefaultTx> {
  handleBatch(batch: Batch<T>, ctx: HandlerContext<Tx>): Promise<void> | void;
}

/** Where and how a handler reads. */
export interface HandlerOptions<T> {
  topic: string;
  codec: Codec<T>;
  /** Overrides the worker's retry policy for this handler. */
  retry?: RetryPolicy;
}

// biome-ignore lint/suspicious/noExplicitAny: constructor arguments are resolved by the container
export type Newable<T> = new (...args: any[]) => T;

/**
 * The inversify `Container` (7.x or 8.x) that class handlers are resolved from, as far as oncely uses
 * it. Structural on purpose: core's types and code never import inversify, so the application's own
 * copy is the only one (two copies' containers reject each other), and an app with function handlers
 * needs no inversify at all.
 */
export interface HandlerContainer {
  bind(serviceIdentifier: symbol | Newable<unknown>): { toSelf(): unknown; toConstantValue(value: unknown): unknown };
  isBound(serviceIdentifier: symbol | Newable<unknown>): boolean;
  get<T>(serviceIdentifier: Newable<T>): T;
}

/** A registered handler: a discriminated union, so the runtime never guesses what it holds. */
export type HandlerDefinition<Tx = DefaultTx> = { topic: string; codec: Codec<unknown>; retry?: RetryPolicy } & (
  | { kind: 'message'; fn: MessageHandlerFn<unknown, Tx> }
  | { kind: 'batch'; fn: BatchHandlerFn<unknown, Tx> }
  | { kind: 'message-class'; target: Newable<MessageHandler<unknown, Tx>> }
  | { kind: 'batch-class'; target: Newable<BatchHandler<unknown, Tx>> }
);
