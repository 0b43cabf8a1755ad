import { EventEmitter } from 'node:events';
import { AbortedError, OncelyError } from '../errors.js';
import type { FetchOptions, FetchRequest, FetchResult, OffsetSpec, PartitionReader, RawRecord } from '../reader/types.js';

interface Partition {
  /** Slots by offset; null marks a gap (a control record or a compacted record). */
  entries: Array<RawRecord | null>;
  logStart: bigint;
}

/** A record to append: value and key as strings or bytes. */
export interface MemoryLogRecord {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: Array<[string, string | Buffer]>;
  timestamp?: number;
}

const toBuf = (v: string | Buffer | null | undefined) =>
  v === null || v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v);

/**
 * An in-memory Kafka log that implements {@link PartitionReader}: for unit tests of handlers and
 * of the runtime without a broker. It keeps Kafka's shape where it matters: offsets with gaps,
 * a log start that retention can move, long-poll fetches, and out-of-range answers.
 */
export class MemoryLog implements PartitionReader {
  readonly #topics = new Map<string, Partition[]>();
  readonly #events = new EventEmitter();
  #closed = false;
  /** Count of fetch calls, for tests that check batching. */
  fetchCalls = 0;

  constructor() {
    this.#events.setMaxListeners(0);
  }

  createTopic(topic: string, partitions: number): this {
    this.#topics.set(
      topic,
      Array.from({ length: partitions }, () => ({ entries: [], logStart: 0n })),
    );
    return this;
  }

  /** Adds partitions to a topic, as Kafka's CreatePartitions does (existing ones keep their records). */
  addPartitions(topic: string, count: number): this {
    const parts = this.#topics.get(topic);
    if (!parts) throw new Error(`no topic ${topic}`);
    for (let i = 0; i < count; i++) parts.push({ entries: [], logStart: 0n });
    return this;
  }

  /** Appends records; returns their offsets. */
  append(topic: string, partition: number, records: MemoryLogRecord[]): bigint[] {
    const p = this.#partition(topic, partition);
    const offsets: bigint[] = [];
    for (const r of records) {
      const offset = p.logStart + BigInt(p.entries.length);
      p.entries.push({
        offset,
        timestamp: r.timestamp ?? Date.now(),
        key: toBuf(r.key),
        value: toBuf(r.value),
        headers: (r.headers ?? []).map(([k, v]) => [k, toBuf(v)] as const),
      });
      offsets.push(offset);
    }
    this.#events.emit('append');
    return offsets;
  }

  /** Appends n offsets that carry no data record (transaction markers, compacted records). */
  appendGap(topic: string, partition: number, n = 1): void {
    const p = this.#partition(topic, partition);
    for (let i = 0; i < n; i++) p.entries.push(null);
    this.#events.emit('append');
  }

  /** Moves the log start forward, as retention does. */
  deleteBefore(topic: string, partition: number, offset: bigint): void {
    const p = this.#partition(topic, partition);
    const drop = Number(offset - p.logStart);
    if (drop > 0) {
      p.entries.splice(0, drop);
      p.logStart = offset;
    }
  }

  async connect(): Promise<void> {}

  async close(): Promise<void> {
    this.#closed = true;
    this.#events.emit('append');
  }

  async partitions(topic: string): Promise<number[]> {
    const t = this.#topics.get(topic);
    if (!t) throw new OncelyError('TOPIC_NOT_FOUND', `Topic "${topic}" does not exist`);
    return t.map((_, i) => i);
  }

  async resolveOffsets(topic: string, partitions: number[], spec: OffsetSpec): Promise<Map<number, bigint>> {
    const out = new Map<number, bigint>();
    for (const id of partitions) {
      const p = this.#partition(topic, id);
      const end = p.logStart + BigInt(p.entries.length);
      if (spec === 'earliest') out.set(id, p.logStart);
      else if (spec === 'latest') out.set(id, end);
      else {
        const hit = p.entries.find((e) => e !== null && e.timestamp >= spec.timestamp);
        out.set(id, hit ? hit.offset : end);
      }
    }
    return out;
  }

  async highWatermarks(topic: string, partitions: number[]): Promise<Map<number, bigint>> {
    return this.resolveOffsets(topic, partitions, 'latest');
  }

  async fetch(requests: FetchRequest[], options: FetchOptions = {}): Promise<FetchResult[]> {
    this.fetchCalls++;
    const deadline = Date.now() + (options.maxWaitMs ?? 100);
    for (;;) {
      if (this.#closed || options.signal?.aborted) throw new AbortedError();
      const results = requests.map((r) => this.#read(r));
      const any = results.some((r) => r.kind === 'out-of-range' || r.records.length > 0 || r.nextOffset !== r.fetchOffset);
      const left = deadline - Date.now();
      if (any || left <= 0) {
        for (const r of results) options.onResult?.(r);
        return results;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#events.off('append', done);
          options.signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#events.once('append', done);
        options.signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  #read(r: FetchRequest): FetchResult {
    const p = this.#partition(r.topic, r.partition);
    const end = p.logStart + BigInt(p.entries.length);
    if (r.offset < p.logStart || r.offset > end) {
      return {
        kind: 'out-of-range',
        topic: r.topic,
        partition: r.partition,
        fetchOffset: r.offset,
        logStartOffset: p.logStart,
        highWatermark: end,
      };
    }
    const maxBytes = r.maxBytes ?? 1_048_576;
    const records: RawRecord[] = [];
    let bytes = 0;
    let next = r.offset;
    for (let i = Number(r.offset - p.logStart); i < p.entries.length; i++) {
      const e = p.entries[i];
      if (e) {
        const size = (e.value?.length ?? 0) + (e.key?.length ?? 0) + 20;
        // Like Kafka, always return at least one record so an oversized one cannot stall the partition.
        if (records.length > 0 && bytes + size > maxBytes) break;
        records.push(e);
        bytes += size;
      }
      next = p.logStart + BigInt(i) + 1n;
    }
    return {
      kind: 'records',
      topic: r.topic,
      partition: r.partition,
      fetchOffset: r.offset,
      records,
      nextOffset: next,
      highWatermark: end,
      logStartOffset: p.logStart,
    };
  }

  #partition(topic: string, partition: number): Partition {
    const p = this.#topics.get(topic)?.[partition];
    if (!p) throw new OncelyError('TOPIC_NOT_FOUND', `Unknown partition ${topic}/${partition}`);
    return p;
  }
}
