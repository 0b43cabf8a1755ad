/**
 * Decoding of the Fetch v11 response and of v2 record batches, on plain Buffers.
 *
 * Why not kafkajs's own decoder: it throws for the whole response when one partition has an
 * error (a single OFFSET_OUT_OF_RANGE would fail every partition in the request), it flattens
 * record batches (so an empty batch left by compaction cannot move nextOffset past it), and it
 * folds headers into an object (losing wire order and repeated names). Here each batch keeps its
 * boundaries, so nextOffset is always "last offset of the last complete batch + 1".
 */
import { OncelyError } from '../errors.js';
import type { RawRecord } from '../reader/types.js';
import { codecName, decompressorFor } from './compression.js';
import { crc32c } from './crc32c.js';
import { CorruptRecordBatchError, KafkaProtocolError, UnsupportedMessageFormatError } from './errors.js';

/** A cursor over a Kafka protocol buffer (big-endian ints, int16-length strings, int32-length arrays). */
export class BufReader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
  ) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new RangeError(`truncated: need ${n} bytes at ${this.pos} of ${this.buf.length}`);
  }
  int8(): number {
    this.need(1);
    return this.buf.readInt8(this.pos++);
  }
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  int64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  string(): string {
    const len = this.int16();
    if (len < 0) return '';
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  /** int32-length bytes; null for -1. */
  bytes(): Buffer | null {
    const len = this.int32();
    if (len < 0) return null;
    this.need(len);
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
  /**
   * Zig-zag varint as a number: the hot path of record decoding (six per record). Up to 7 bytes
   * (49 bits) it is computed in doubles, exactly; a longer one (only a varlong can be) is decoded
   * again as a bigint and converted, so values beyond 2^53 lose precision as Number() would.
   *
   * Measured with `pnpm bench --profile` (1M records of 159 bytes): the bigint-only version spent
   * ~10 bigint operations per varint, and record decoding was the worker's busiest JS function.
   */
  varint(): number {
    const buf = this.buf;
    const start = this.pos;
    let pos = start;
    let raw = 0;
    let mul = 1;
    for (;;) {
      if (pos >= buf.length) throw new RangeError(`truncated: need 1 bytes at ${pos} of ${buf.length}`);
      const byte = buf[pos++]!;
      raw += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) break;
      if (pos - start === 7) {
        this.pos = start;
        return Number(this.varlong());
      }
      mul *= 128;
    }
    this.pos = pos;
    // Zig-zag: even n → n/2, odd n → -(n+1)/2; exact for n < 2^53.
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }
  /** Zig-zag varint as a bigint (covers varlong too). */
  varlong(): bigint {
    let raw = 0n;
    let shift = 0n;
    for (;;) {
      this.need(1);
      const byte = this.buf[this.pos++]!;
      raw |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
      if (shift > 63n) throw new RangeError('varint too long');
    }
    return (raw >> 1n) ^ -(raw & 1n);
  }
  /** Steps over `length` bytes (none for a negative length: null); returns where they start. */
  skip(length: number): number {
    const start = this.pos;
    if (length > 0) {
      this.need(length);
      this.pos += length;
    }
    return start;
  }
  varbytes(): Buffer | null {
    const len = this.varint();
    if (len < 0) return null;
    this.need(len);
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
  array<T>(item: () => T): T[] | null {
    const n = this.int32();
    if (n < 0) return null;
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item());
    return out;
  }
}

/** An aborted transaction as the broker lists it in a read_committed fetch. */
export interface AbortedTransaction {
  producerId: bigint;
  firstOffset: bigint;
}

/** One partition of a Fetch v11 response, records still undecoded. */
export interface FetchPartitionResponse {
  partition: number;
  errorCode: number;
  highWatermark: bigint;
  lastStableOffset: bigint;
  logStartOffset: bigint;
  abortedTransactions: AbortedTransaction[] | null;
  records: Buffer | null;
}

/** A decoded Fetch v11 response. */
export interface FetchResponse {
  clientSideThrottleTime: number;
  errorCode: number;
  topics: Array<{ topic: string; partitions: FetchPartitionResponse[] }>;
}

/** Decodes a Fetch v11 response body (after the correlation id). */
export function decodeFetchResponseV11(payload: Buffer): FetchResponse {
  const r = new BufReader(payload);
  const clientSideThrottleTime = r.int32();
  const errorCode = r.int16();
  r.int32(); // session id: we never open a fetch session
  const topics =
    r.array(() => ({
      topic: r.string(),
      partitions:
        r.array(() => ({
          partition: r.int32(),
          errorCode: r.int16(),
          highWatermark: r.int64(),
          lastStableOffset: r.int64(),
          logStartOffset: r.int64(),
          abortedTransactions: r.array(() => ({ producerId: r.int64(), firstOffset: r.int64() })),
          preferredReadReplica: r.int32(),
          records: r.bytes(),
        })) ?? [],
    })) ?? [];
  return { clientSideThrottleTime, errorCode, topics };
}

const BATCH_HEADER = 61; // bytes from a batch's first offset to its first record
const TIMESTAMP_TYPE_LOG_APPEND = 0x08;
const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;

/** What {@link decodePartitionRecords} made of one partition's record set. */
export interface DecodedPartition {
  records: RawRecord[];
  /** Last offset of the last complete batch + 1, or undefined when no complete batch came back. */
  nextOffset: bigint | undefined;
}

/** Options of {@link decodePartitionRecords}. */
export interface DecodeOptions {
  /** Named in errors. */
  topic?: string;
  partition?: number;
  /**
   * Verify each batch's CRC-32C. Default true; false exists only so that bench/crc32c.ts can price
   * the check against plain decoding in the same run.
   */
  checkCrc?: boolean;
}

/**
 * Walks the record batches of one partition: drops records before fetchOffset, control batches
 * and (under read_committed) batches of aborted transactions, the way Kafka's Java consumer does
 * (aborted producer ids are collected from the aborted-transaction list as batches pass its first
 * offsets, and released at that producer's abort marker). A partial batch at the end (cut by
 * maxBytes) is ignored: the next fetch starts at it.
 *
 * Every complete batch's CRC-32C is verified before anything in it is read, as Java's consumer
 * does with `check.crcs=true`: damaged bytes are never decoded into values. The batches before a
 * damaged one are returned (nextOffset stops at it); a damaged first batch throws
 * CorruptRecordBatchError, and the reader fetches it again.
 */
export async function decodePartitionRecords(
  records: Buffer | null,
  fetchOffset: bigint,
  abortedTransactions: AbortedTransaction[] | null,
  readCommitted: boolean,
  options: DecodeOptions = {},
): Promise<DecodedPartition> {
  const out: RawRecord[] = [];
  let nextOffset: bigint | undefined;
  if (!records || records.length === 0) return { records: out, nextOffset };

  const pendingAborts = [...(abortedTransactions ?? [])].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1));
  const abortedProducers = new Set<bigint>();

  let pos = 0;
  while (records.length - pos >= 12) {
    const baseOffset = records.readBigInt64BE(pos);
    const batchLength = records.readInt32BE(pos + 8);
    const end = pos + 12 + batchLength;
    if (records.length - pos < 17) break; // partial batch at the end, its magic not even there
    // The magic byte sits at the same place in v0/v1 message sets, so it is read before the
    // length is judged: a v1 message can be shorter than a v2 batch header, and taking it for a
    // partial batch would stall the partition without a word.
    const magic = records.readInt8(pos + 16);
    if (magic !== 2) {
      if (nextOffset !== undefined) break; // deliver the v2 batches before it; the next fetch starts here
      throw new UnsupportedMessageFormatError(options.topic ?? '?', options.partition ?? -1, baseOffset, magic);
    }
    if (batchLength < BATCH_HEADER - 12 || end > records.length) break; // partial batch at the end
    const lastOffset = baseOffset + BigInt(records.readInt32BE(pos + 23));
    if (options.checkCrc !== false) {
      // The CRC covers everything from the attributes to the end of the batch.
      const stored = records.readUInt32BE(pos + 17);
      const computed = crc32c(records, pos + 21, end);
      if (computed !== stored) {
        // What came before it is intact: deliver that; the next fetch starts at this batch.
        if (nextOffset !== undefined) break;
        throw new CorruptRecordBatchError(options.topic ?? '?', options.partition ?? -1, baseOffset, stored, computed);
      }
    }
    const attributes = records.readInt16BE(pos + 21);
    const firstTimestamp = records.readBigInt64BE(pos + 27);
    const maxTimestamp = records.readBigInt64BE(pos + 35);
    const producerId = records.readBigInt64BE(pos + 43);
    const count = records.readInt32BE(pos + 57);
    const body = records.subarray(pos + BATCH_HEADER, end);
    pos = end;
    nextOffset = lastOffset + 1n;

    const isControl = (attributes & CONTROL) !== 0;
    if (readCommitted && producerId >= 0n) {
      while (pendingAborts.length > 0 && pendingAborts[0]!.firstOffset <= lastOffset) {
        abortedProducers.add(pendingAborts.shift()!.producerId);
      }
      if (isControl) {
        if (isAbortMarker(body, count)) abortedProducers.delete(producerId);
        continue;
      }
      if ((attributes & TRANSACTIONAL) !== 0 && abortedProducers.has(producerId)) continue;
    }
    if (isControl || lastOffset < fetchOffset) continue;

    const codec = attributes & 0x07;
    let plain = body;
    if (codec !== 0) {
      const decompress = decompressorFor(codec);
      try {
        plain = await decompress(body);
      } catch (e) {
        if (e instanceof OncelyError) throw e;
        throw new KafkaProtocolError(`Could not decompress a ${codecName(codec)} record batch at offset ${baseOffset}.`, {
          cause: e,
        });
      }
    }
    // Keys, values and header values are views into one copy of the batch (a decompressed batch
    // is a fresh buffer already): a record kept by the application holds its batch, never the
    // whole fetch response. One copy per batch instead of one allocation per key and per value.
    if (codec === 0) plain = Buffer.from(plain);
    // Timestamps in ms are far below 2^53: the per-record sum is done in doubles.
    const batch: RecordBatchBytes = {
      bytes: plain,
      baseTimestamp: Number(firstTimestamp),
      logAppendTimestamp: (attributes & TIMESTAMP_TYPE_LOG_APPEND) !== 0 ? Number(maxTimestamp) : undefined,
    };
    // Records before fetchOffset (a fetch that starts inside a batch) are skipped by offset delta,
    // compared as numbers: deltas are int32.
    const skipBelow = fetchOffset > baseOffset ? Number(fetchOffset - baseOffset) : 0;
    const r = new BufReader(plain);
    for (let i = 0; i < count; i++) {
      const length = r.varint();
      const recordEnd = r.pos + length;
      r.int8(); // record attributes: unused
      const timestampDelta = r.varint();
      const offsetDelta = r.varint();
      const keyLength = r.varint();
      const keyStart = r.skip(keyLength);
      const valueLength = r.varint();
      const valueStart = r.skip(valueLength);
      const headerCount = r.varint();
      // Most records have no headers: they share one frozen empty array instead of one each.
      const headers: Array<readonly [string, Buffer | null]> = headerCount === 0 ? (NO_HEADERS as never) : [];
      for (let h = 0; h < headerCount; h++) {
        const name = r.varbytes();
        const headerValue = r.varbytes();
        headers.push([name ? name.toString('utf8') : '', headerValue]);
      }
      r.pos = recordEnd;
      if (offsetDelta < skipBelow) continue;
      out.push(
        new WireRecord(
          baseOffset + BigInt(offsetDelta),
          batch,
          timestampDelta,
          keyStart,
          keyLength,
          valueStart,
          valueLength,
          headers,
        ),
      );
    }
  }
  return { records: out, nextOffset };
}

const NO_HEADERS: ReadonlyArray<readonly [string, Buffer | null]> = Object.freeze([]);

/** What the records of one batch share: the batch's bytes and its timestamps. */
interface RecordBatchBytes {
  readonly bytes: Buffer;
  readonly baseTimestamp: number;
  /** The batch's max timestamp, which every record takes when the topic stamps log-append time. */
  readonly logAppendTimestamp: number | undefined;
}

/**
 * A record decoded from a v2 batch. Its key and value are not cut out of the batch as Buffers
 * when it is decoded: the record keeps where they lie in its batch's bytes, and `key` and `value`
 * return a view over them when read (a new view each time, over the same bytes, never a copy).
 *
 * Why: a record waits in its partition's mailbox and in its transaction for tens of milliseconds,
 * across young-generation collections. In a heap snapshot taken while a worker drained a backlog,
 * the two Buffer views (~100 bytes each) were half of what a waiting record kept alive; everything
 * a record keeps is copied by each scavenge it survives and then promoted to the old generation,
 * where it stays until the next mark-compact. A view made when a codec or a handler reads the
 * value dies young, which costs a scavenge nothing. The timestamp is kept as the batch's base and
 * the record's delta for the same reason (a double in a field is a heap number of its own).
 */
export class WireRecord implements RawRecord {
  readonly offset: bigint;
  readonly headers: ReadonlyArray<readonly [name: string, value: Buffer | null]>;
  /** Bytes of the key and value (null counts 0), known without reading them. */
  readonly size: number;
  readonly #batch: RecordBatchBytes;
  readonly #timestampDelta: number;
  readonly #keyStart: number;
  /** -1: a null key. */
  readonly #keyLength: number;
  readonly #valueStart: number;
  /** -1: a null value (a tombstone). */
  readonly #valueLength: number;

  constructor(
    offset: bigint,
    batch: RecordBatchBytes,
    timestampDelta: number,
    keyStart: number,
    keyLength: number,
    valueStart: number,
    valueLength: number,
    headers: ReadonlyArray<readonly [name: string, value: Buffer | null]>,
  ) {
    this.offset = offset;
    this.headers = headers;
    this.size = Math.max(keyLength, 0) + Math.max(valueLength, 0);
    this.#batch = batch;
    this.#timestampDelta = timestampDelta;
    this.#keyStart = keyStart;
    this.#keyLength = keyLength;
    this.#valueStart = valueStart;
    this.#valueLength = valueLength;
  }

  get timestamp(): number {
    return this.#batch.logAppendTimestamp ?? this.#batch.baseTimestamp + this.#timestampDelta;
  }

  get key(): Buffer | null {
    return this.#keyLength < 0 ? null : this.#batch.bytes.subarray(this.#keyStart, this.#keyStart + this.#keyLength);
  }

  get value(): Buffer | null {
    return this.#valueLength < 0 ? null : this.#batch.bytes.subarray(this.#valueStart, this.#valueStart + this.#valueLength);
  }

  /** Plain-object form (logging, JSON.stringify): the getters are not own properties. */
  toJSON(): { offset: string; timestamp: number; key: Buffer | null; value: Buffer | null; headers: WireRecord['headers'] } {
    return { offset: this.offset.toString(), timestamp: this.timestamp, key: this.key, value: this.value, headers: this.headers };
  }
}

/** A control batch holds one record whose key is (version int16, type int16); type 0 is ABORT. */
function isAbortMarker(body: Buffer, count: number): boolean {
  if (count < 1) return false;
  const r = new BufReader(body);
  r.varint(); // length
  r.int8();
  r.varlong();
  r.varint();
  const key = r.varbytes();
  return key !== null && key.length >= 4 && key.readInt16BE(2) === 0;
}
