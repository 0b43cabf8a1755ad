import type { OncelyError } from '../errors.js';

/** A topic and a partition. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A record as the broker returned it, before any codec ran. Offsets are bigint. */
export interface RawRecord {
  offset: bigint;
  /** Record timestamp in milliseconds since the epoch (create or log-append time). */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Headers in wire order; a header name may repeat. */
  headers: ReadonlyArray<readonly [name: string, value: Buffer | null]>;
  /**
   * Bytes of the key and the value (a null one counts 0), when the reader knows them without
   * making the Buffers (the readers' records keep key and value as places in their batch).
   */
  readonly size?: number;
}

/** Bytes of a record's key and value (a null one counts 0). */
export function recordSize(r: RawRecord): number {
  return r.size ?? (r.key?.length ?? 0) + (r.value?.length ?? 0);
}

/** Where to start reading a partition never seen before, or where to move on out-of-range. */
export type OffsetSpec = 'earliest' | 'latest' | { timestamp: number };

/** One partition to fetch, at an offset that the caller names. */
export interface FetchRequest {
  topic: string;
  partition: number;
  offset: bigint;
  /** Upper bound of bytes for this partition in this fetch (the broker may exceed it for one oversized batch). */
  maxBytes?: number;
}

/** What a fetch returned for one partition. */
export type FetchResult = FetchedRecords | FetchOutOfRange;

export interface FetchedRecords {
  kind: 'records';
  topic: string;
  partition: number;
  /** The offset that was requested. */
  fetchOffset: bigint;
  /**
   * Data records at or after fetchOffset, in offset order. Control records (transaction markers)
   * and, under read_committed, records of aborted transactions are never included.
   */
  records: RawRecord[];
  /**
   * Where the next fetch of this partition starts: the last offset of the last record batch
   * returned + 1. It can be past the last record (control records, aborted or compacted records)
   * and equals fetchOffset only when nothing was returned. Never assume previous + 1.
   */
  nextOffset: bigint;
  /** The partition's high watermark at the time of the fetch. */
  highWatermark: bigint;
  /** The last stable offset (read_committed reads stop there), when the broker sent it. */
  lastStableOffset?: bigint;
  /** The partition's log start offset, when the broker sent it. */
  logStartOffset?: bigint;
}

/** The requested offset lies outside the log: records were deleted by retention, or never existed. */
export interface FetchOutOfRange {
  kind: 'out-of-range';
  topic: string;
  partition: number;
  fetchOffset: bigint;
  logStartOffset?: bigint;
  highWatermark?: bigint;
}

export interface FetchOptions {
  /** Longest time the broker holds the request open when no data is there (long poll). */
  maxWaitMs?: number;
  /** Aborts the wait: the promise rejects with AbortedError or resolves early with what arrived. */
  signal?: AbortSignal;
  /**
   * Receives each partition's result as soon as it is known, before the promise settles, so that
   * a partition whose leader is down or slow does not hold back the others. Called at most once
   * per request and never after the promise settled (nor after an abort).
   */
  onResult?: (result: FetchResult) => void;
  /**
   * Receives the error of each partition that could not be fetched (instead of a result); the
   * promise then rejects with the first of them, once every partition has settled.
   */
  onError?: (error: OncelyError, request: FetchRequest) => void;
}

/**
 * Reads Kafka partitions at explicit offsets: no consumer group is joined and nothing is committed
 * to Kafka. Every fetch names its offset; the caller (oncely's runtime) keeps positions in its
 * store. Adapters must pass the reader contract suite in test/kafka/.
 *
 * Transient broker trouble (leader moved, connection dropped) is handled inside the adapter
 * (metadata refresh, reconnect, retry); what it cannot fix surfaces as a KafkaUnavailableError
 * (retriable) or another OncelyError.
 */
export interface PartitionReader {
  /** Connects and loads metadata. Idempotent. */
  connect(): Promise<void>;
  /** Closes every connection; pending fetches reject with AbortedError. Idempotent. */
  close(): Promise<void>;
  /** The partition ids of a topic, sorted; TopicNotFound (OncelyError 'TOPIC_NOT_FOUND') when it does not exist. */
  partitions(topic: string): Promise<number[]>;
  /**
   * Resolves an OffsetSpec per partition: 'earliest' is the log start offset, 'latest' the high
   * watermark, a timestamp the first offset whose timestamp is at or after it (the high watermark
   * when none is).
   */
  resolveOffsets(topic: string, partitions: number[], spec: OffsetSpec): Promise<Map<number, bigint>>;
  /** The high watermark per partition (what "caught up" means). */
  highWatermarks(topic: string, partitions: number[]): Promise<Map<number, bigint>>;
  /**
   * Fetches every requested partition at its offset. Partitions are independent: each is retried
   * alone (a partition without a leader backs off without delaying the others) and its result
   * goes to `onResult` as soon as it is known. Partitions led by the same broker share requests,
   * also across concurrent calls. Resolves with one result per request, in request order, once
   * every partition has one; rejects, once every partition has settled, when one could not be
   * fetched (`onError` tells which). A partition without new data returns kind 'records' with no
   * records after at most maxWaitMs.
   */
  fetch(requests: FetchRequest[], options?: FetchOptions): Promise<FetchResult[]>;
}
