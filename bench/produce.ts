/**
 * Prepares the benchmark topic: creates it and fills it with the records of data.ts. A topic of the
 * same name that already holds exactly these records is reused, so a second `pnpm bench` with the
 * same parameters starts at once.
 *
 * The records are sent as kafkajs's producer sent them (what the scenarios read is the same): the
 * key's partition from kafkajs's default partitioner (murmur2, computed once per account), chunks
 * of 2,000 consecutive records (fewer for large values so that a request stays under ~512 KiB,
 * within the broker's message size limit), each chunk one Produce request per partition leader
 * with one uncompressed v2 record batch per partition, acks from the leader. What kafkajs spent its
 * time on (one process core at ~45,000 records/s: an object and an encoder per record, a
 * byte-at-a-time CRC-32C) is done here with plain buffer writes and the runtime's sliced CRC-32C,
 * and requests are written raw on one connection per leader, up to 8 in flight: Kafka answers a
 * connection's requests in order, so each partition holds its records in sequence order. Any
 * error fails the send (nothing is retried, so nothing is written twice) and the topic is made
 * again, as after a partly written produce.
 */
import { connect, type Socket } from 'node:net';
import { type Admin, Kafka, logLevel, Partitioners } from 'kafkajs';
import { crc32c } from '../packages/core/src/kafkajs/crc32c.js';
import { ACCOUNTS, accountOf, recordValue } from './data.js';

const CHUNK = 2_000;
const CHUNK_BYTES = 512 * 1024;
/** Produce requests in flight per leader connection. */
const IN_FLIGHT = 8;
const PRODUCE_API_KEY = 0;
/** Produce v3: the first version with v2 record batches, and the oldest Kafka 4 still serves. */
const PRODUCE_VERSION = 3;
const CLIENT_ID = 'oncely-bench-producer';
const ACKS = 1;
const PRODUCE_TIMEOUT_MS = 30_000;

export interface PreparedTopic {
  topic: string;
  reused: boolean;
  produceMs: number;
  recordsPerSec: number;
}

async function recordsIn(kafka: Kafka, topic: string): Promise<{ partitions: number; records: number } | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(topic)) return undefined;
    const offsets = await admin.fetchTopicOffsets(topic);
    const records = offsets.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
    return { partitions: offsets.length, records };
  } finally {
    await admin.disconnect();
  }
}

/**
 * Waits until every partition of a new topic answers a ListOffsets from its leader, empty. A leader
 * named in the metadata can still refuse requests for a while after createTopics returned (more so
 * with many partitions): a produce it refused is retried by the producer, and a retry of a request
 * that partly succeeded writes records twice.
 */
async function untilServed(admin: Admin, topic: string, partitions: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last: unknown;
  for (;;) {
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      if (offsets.length === partitions) {
        if (offsets.some((p) => p.high !== '0'))
          throw new Error(`topic ${topic} is not empty just after it was created; is something else writing to it?`);
        return;
      }
      last = `${offsets.length} of ${partitions} partitions`;
    } catch (e) {
      if (e instanceof Error && e.message.includes('is not empty')) throw e;
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `topic ${topic}: its partitions were not all served within 60 s (${last instanceof Error ? last.message : String(last)})`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Makes `topic` hold exactly `records` records in `partitions` partitions. */
export async function prepareTopic(opts: {
  brokers: string[];
  topic: string;
  partitions: number;
  records: number;
  valueBytes: number;
  log: (line: string) => void;
  /** Tries so far: a produce that a just-created topic's leaders refused can be retried into duplicates. */
  attempt?: number;
}): Promise<PreparedTopic> {
  const { brokers, topic, partitions, records, valueBytes, log } = opts;
  const attempt = opts.attempt ?? 1;
  const kafka = new Kafka({ brokers, clientId: 'oncely-bench-producer', logLevel: logLevel.WARN });
  const existing = await recordsIn(kafka, topic);
  if (existing && existing.partitions === partitions && existing.records === records) {
    log(`topic ${topic}: reusing ${records.toLocaleString('en-US')} records in ${partitions} partitions`);
    return { topic, reused: true, produceMs: 0, recordsPerSec: 0 };
  }
  // The admin's retries of a new topic's not-yet-served partitions are expected: not logged.
  const admin = new Kafka({ brokers, clientId: 'oncely-bench-admin', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  let route: Route;
  try {
    if (existing) {
      log(`topic ${topic}: has ${existing.records} records in ${existing.partitions} partitions; recreating it`);
      await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
      // Topic deletion is asynchronous in the broker: wait until the name is free.
      for (let i = 0; i < 120 && (await admin.listTopics()).includes(topic); i++) await new Promise((r) => setTimeout(r, 500));
    }
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
    } catch (e) {
      // Just after the deletion of a topic of the same name, the broker may not host the new
      // partitions yet when createTopics looks for their leaders: wait for them below.
      log(`topic ${topic}: ${e instanceof Error ? e.message : String(e)} while creating it; waiting for its partitions`);
    }
    await untilServed(admin, topic, partitions);
    route = await routeOf(admin, topic);
  } finally {
    await admin.disconnect();
  }

  const chunk = Math.max(1, Math.min(CHUNK, Math.floor(CHUNK_BYTES / (valueBytes + 16))));
  const started = performance.now();
  let lastLog = started;
  let failure: unknown;
  try {
    await produceRecords({
      ...route,
      topic,
      records,
      valueBytes,
      chunk,
      onChunk: (to) => {
        if (performance.now() - lastLog > 5_000) {
          lastLog = performance.now();
          log(`  produced ${to.toLocaleString('en-US')} / ${records.toLocaleString('en-US')}`);
        }
      },
    });
  } catch (e) {
    failure = e;
  }
  const produceMs = performance.now() - started;
  const check = await recordsIn(kafka, topic);
  const why = failure
    ? `a send failed (${failure instanceof Error ? failure.message : String(failure)})`
    : check?.records !== records
      ? `it holds ${check?.records} records after producing ${records}`
      : undefined;
  if (why && attempt < 3) {
    // A new topic's leaders can refuse the first sends (NOT_LEADER) after createTopics returned:
    // the topic is made again (the recreate path above), by then with settled leaders.
    log(`topic ${topic}: ${why}; producing it again`);
    return prepareTopic({ ...opts, attempt: attempt + 1 });
  }
  if (failure) throw failure;
  if (check?.records !== records) {
    throw new Error(
      `topic ${topic} holds ${check?.records} records after producing ${records}; is something else writing to it?`,
    );
  }
  const recordsPerSec = records / (produceMs / 1000);
  log(
    `topic ${topic}: produced ${records.toLocaleString('en-US')} records in ${(produceMs / 1000).toFixed(1)} s (${Math.round(recordsPerSec).toLocaleString('en-US')} records/s)`,
  );
  return { topic, reused: false, produceMs, recordsPerSec };
}

/** Where each account's records go: its partition (kafkajs's default partitioner) and each partition's leader. */
interface Route {
  partitionOfAccount: number[];
  leaderOf: Map<number, { host: string; port: number }>;
}

async function routeOf(admin: Admin, topic: string): Promise<Route> {
  const metadata = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions ?? [];
  const { brokers } = await admin.describeCluster();
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = [...metadata].sort((a, b) => a.partitionId - b.partitionId);
  const partitionOfAccount = Array.from({ length: ACCOUNTS }, (_, a) =>
    partitioner({ topic, partitionMetadata, message: { key: accountOf(a), value: null } }),
  );
  const leaderOf = new Map<number, { host: string; port: number }>();
  for (const p of partitionMetadata) {
    const b = brokers.find((x) => x.nodeId === p.leader);
    if (!b) throw new Error(`topic ${topic}: partition ${p.partitionId} has no known leader (${p.leader})`);
    leaderOf.set(p.partitionId, { host: b.host, port: b.port });
  }
  return { partitionOfAccount, leaderOf };
}

/** One connection to a leader: size-prefixed requests written back to back, answers matched by correlation id. */
class LeaderConnection {
  private readonly waiting = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private buffered: Buffer = Buffer.alloc(0);
  private failed: Error | undefined;
  inFlight = 0;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (data: Buffer) => this.read(data));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('the connection to the leader closed')));
  }

  static open(host: string, port: number): Promise<LeaderConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new LeaderConnection(socket));
      });
    });
  }

  /** Sends a request body (after the header) and resolves with the answer's body (after the correlation id). */
  request(apiKey: number, apiVersion: number, body: Buffer[]): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    const header = Buffer.alloc(14 + CLIENT_ID.length);
    const bodyBytes = body.reduce((n, b) => n + b.length, 0);
    header.writeInt32BE(header.length - 4 + bodyBytes, 0);
    header.writeInt16BE(apiKey, 4);
    header.writeInt16BE(apiVersion, 6);
    header.writeInt32BE(id, 8);
    header.writeInt16BE(CLIENT_ID.length, 12);
    header.write(CLIENT_ID, 14, 'latin1');
    this.inFlight++;
    return new Promise<Buffer>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.socket.cork();
      this.socket.write(header);
      for (const b of body) this.socket.write(b);
      this.socket.uncork();
    }).finally(() => {
      this.inFlight--;
    });
  }

  close(): void {
    this.failed ??= new Error('closed');
    this.socket.destroy();
  }

  private read(data: Buffer): void {
    this.buffered = this.buffered.length === 0 ? data : Buffer.concat([this.buffered, data]);
    while (this.buffered.length >= 4) {
      const size = this.buffered.readInt32BE(0);
      if (this.buffered.length < 4 + size) return;
      const id = this.buffered.readInt32BE(4);
      const answer = this.buffered.subarray(8, 4 + size);
      this.buffered = this.buffered.subarray(4 + size);
      const w = this.waiting.get(id);
      this.waiting.delete(id);
      if (w) w.resolve(answer);
      else this.fail(new Error(`an answer to no request (correlation id ${id})`));
    }
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const w of this.waiting.values()) w.reject(this.failed);
    this.waiting.clear();
    this.socket.destroy();
  }
}

/** Length in bytes of the zigzag varint of n (n ≥ 0 here, below 2^30). */
function varintBytes(n: number): number {
  const z = n * 2;
  return z < 0x80 ? 1 : z < 0x4000 ? 2 : z < 0x200000 ? 3 : z < 0x10000000 ? 4 : 5;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  let z = n * 2;
  while (z >= 0x80) {
    buf[at++] = (z & 0x7f) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[at++] = z;
  return at;
}

/**
 * One v2 record batch of the records `seqs` (offset deltas 0..n-1, one timestamp, no producer id,
 * no headers, uncompressed), as kafkajs's producer encodes a send's records of one partition.
 */
function recordBatch(seqs: number[], valueBytes: number, timestamp: number): Buffer {
  const keys: string[] = new Array(seqs.length);
  const values: string[] = new Array(seqs.length);
  let size = 61;
  for (let i = 0; i < seqs.length; i++) {
    const key = accountOf(seqs[i]!);
    const value = recordValue(seqs[i]!, valueBytes);
    keys[i] = key;
    values[i] = value;
    // attributes, timestamp delta 0, offset delta, key, value, no headers (all ASCII: a byte per character)
    const body = 1 + 1 + varintBytes(i) + varintBytes(key.length) + key.length + varintBytes(value.length) + value.length + 1;
    size += varintBytes(body) + body;
  }
  const buf = Buffer.allocUnsafe(size);
  buf.writeBigInt64BE(0n, 0); // base offset: the broker assigns it
  buf.writeInt32BE(size - 12, 8);
  buf.writeInt32BE(-1, 12); // partition leader epoch
  buf.writeInt8(2, 16); // magic
  buf.writeInt16BE(0, 21); // attributes: no compression, create time, not transactional
  buf.writeInt32BE(seqs.length - 1, 23); // last offset delta
  buf.writeBigInt64BE(BigInt(timestamp), 27); // base timestamp
  buf.writeBigInt64BE(BigInt(timestamp), 35); // max timestamp
  buf.writeBigInt64BE(-1n, 43); // producer id
  buf.writeInt16BE(-1, 51); // producer epoch
  buf.writeInt32BE(-1, 53); // base sequence
  buf.writeInt32BE(seqs.length, 57);
  let at = 61;
  for (let i = 0; i < seqs.length; i++) {
    const key = keys[i]!;
    const value = values[i]!;
    const body = 1 + 1 + varintBytes(i) + varintBytes(key.length) + key.length + varintBytes(value.length) + value.length + 1;
    at = writeVarint(buf, at, body);
    buf[at++] = 0; // attributes
    buf[at++] = 0; // timestamp delta
    at = writeVarint(buf, at, i);
    at = writeVarint(buf, at, key.length);
    at += buf.write(key, at, 'latin1');
    at = writeVarint(buf, at, value.length);
    at += buf.write(value, at, 'latin1');
    buf[at++] = 0; // headers
  }
  buf.writeUInt32BE(crc32c(buf, 21, size), 17);
  return buf;
}

/** A Produce v3 request body: one topic, one record batch per partition. */
function produceBody(topic: string, batches: Array<{ partition: number; batch: Buffer }>): Buffer[] {
  const head = Buffer.alloc(2 + 2 + 4 + 4 + 2 + topic.length + 4);
  let at = head.writeInt16BE(-1, 0); // transactional id: null
  at = head.writeInt16BE(ACKS, at);
  at = head.writeInt32BE(PRODUCE_TIMEOUT_MS, at);
  at = head.writeInt32BE(1, at); // one topic
  at = head.writeInt16BE(topic.length, at);
  at += head.write(topic, at, 'utf8');
  head.writeInt32BE(batches.length, at);
  const body: Buffer[] = [head];
  for (const { partition, batch } of batches) {
    const p = Buffer.allocUnsafe(8);
    p.writeInt32BE(partition, 0);
    p.writeInt32BE(batch.length, 4);
    body.push(p, batch);
  }
  return body;
}

/** Throws unless every partition of a Produce v3 answer has error code 0. */
function checkProduceAnswer(answer: Buffer, topic: string): void {
  let at = 0;
  const topics = answer.readInt32BE(at);
  at += 4;
  for (let t = 0; t < topics; t++) {
    const nameLength = answer.readInt16BE(at);
    at += 2 + nameLength;
    const partitions = answer.readInt32BE(at);
    at += 4;
    for (let p = 0; p < partitions; p++) {
      const partition = answer.readInt32BE(at);
      const code = answer.readInt16BE(at + 4);
      at += 4 + 2 + 8 + 8;
      if (code !== 0) throw new Error(`producing to ${topic} partition ${partition}: Kafka error code ${code}`);
    }
  }
}

/** Sends records 0..records-1 in chunks of `chunk`, at most IN_FLIGHT requests per leader at a time. */
async function produceRecords(
  o: Route & {
    topic: string;
    records: number;
    valueBytes: number;
    chunk: number;
    onChunk: (to: number) => void;
  },
): Promise<void> {
  const connections = new Map<string, Promise<LeaderConnection>>();
  const connectionOf = (l: { host: string; port: number }) => {
    const k = `${l.host}:${l.port}`;
    const c = connections.get(k) ?? LeaderConnection.open(l.host, l.port);
    connections.set(k, c);
    return c;
  };
  const sent = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  try {
    for (let from = 0; from < o.records; from += o.chunk) {
      const to = Math.min(o.records, from + o.chunk);
      const byPartition = new Map<number, number[]>();
      for (let seq = from; seq < to; seq++) {
        const p = o.partitionOfAccount[seq % ACCOUNTS]!;
        const list = byPartition.get(p);
        if (list) list.push(seq);
        else byPartition.set(p, [seq]);
      }
      const timestamp = Date.now();
      const byLeader = new Map<
        string,
        { leader: { host: string; port: number }; batches: Array<{ partition: number; batch: Buffer }> }
      >();
      for (const [partition, seqs] of [...byPartition].sort((a, b) => a[0] - b[0])) {
        const leader = o.leaderOf.get(partition)!;
        const k = `${leader.host}:${leader.port}`;
        const l = byLeader.get(k) ?? { leader, batches: [] };
        byLeader.set(k, l);
        l.batches.push({ partition, batch: recordBatch(seqs, o.valueBytes, timestamp) });
      }
      for (const { leader, batches } of byLeader.values()) {
        const connection = await connectionOf(leader);
        // Requests go out on the connection in chunk order and Kafka answers them in that order.
        while (connection.inFlight >= IN_FLIGHT && !failure) await Promise.race(sent).catch(() => {});
        if (failure) throw failure.error;
        const request = connection
          .request(PRODUCE_API_KEY, PRODUCE_VERSION, produceBody(o.topic, batches))
          .then((answer) => checkProduceAnswer(answer, o.topic));
        const tracked: Promise<void> = request.finally(() => sent.delete(tracked));
        sent.add(tracked);
        // A failed send fails the whole production: no further chunk is sent.
        tracked.catch((error: unknown) => {
          failure ??= { error };
        });
      }
      o.onChunk(to);
    }
    await Promise.allSettled(sent);
    if (failure) throw failure.error;
  } finally {
    for (const c of connections.values()) c.then((x) => x.close()).catch(() => {});
  }
}
