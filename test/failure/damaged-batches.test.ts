/**
 * Record batches that reach the reader damaged: bytes flipped in the broker's segment file on disk
 * (what a failing disk or a broker bug serves). Kafka's Java consumer checks every batch's CRC-32C
 * (`check.crcs=true`); so does oncely: a damaged batch is fetched again, and when it stays damaged
 * the partition stops with an error that says what to do. Nothing decoded from damaged bytes is
 * ever handed to a handler. A log that still holds message sets of format v0/v1 (written before
 * Kafka 0.11) stops its partition with a clear error. Runs against a private broker, whose files
 * this test may change.
 */
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import {
  createWorker,
  defineApp,
  KafkajsPartitionReader,
  type Logger,
  OncelyError,
  PlatformaticPartitionReader,
  string,
} from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import { Kafka, logLevel } from 'kafkajs';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup } from '../support/cleanup.js';
import { databaseUrl, freshSchema, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { captureLogger, type PrivateBroker, privateBroker } from './support.js';

let kafka: PrivateBroker;
let client: Kafka;
const workers: Array<{ abort(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(workers.map((w) => w.abort().catch(() => {})));
});

beforeAll(async () => {
  kafka = await privateBroker();
  client = new Kafka({ clientId: 'damaged-batches', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
});

async function topicWith(partitions: number): Promise<string> {
  const topic = randomName('damaged');
  const admin = client.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }] });
  await admin.disconnect();
  return topic;
}

/** Each call is one produce request, so each value lands in a record batch of its own. */
async function produce(topic: string, partition: number, values: string[]): Promise<void> {
  const producer = client.producer();
  await producer.connect();
  for (const value of values) await producer.send({ topic, acks: -1, messages: [{ partition, value }] });
  await producer.disconnect();
}

/**
 * Overwrites the first occurrence of `from` in the partition's segment files with `to` (same
 * length), in place, the way a damaged disk block would read; returns a function that undoes it.
 */
function damage(topic: string, partition: number, from: string, to: string): () => void {
  const dir = join(kafka.dataDir, `${topic}-${partition}`);
  const needle = Buffer.from(from);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.log'))) {
    const file = join(dir, name);
    const at = readFileSync(file).indexOf(needle);
    if (at < 0) continue;
    const write = (bytes: Buffer) => {
      const fd = openSync(file, 'r+');
      try {
        writeSync(fd, bytes, 0, bytes.length, at);
      } finally {
        closeSync(fd);
      }
    };
    write(Buffer.from(to));
    return () => write(needle);
  }
  throw new Error(`${from} not found in the segments of ${topic}-${partition}`);
}

/** One message of format v1 (Kafka 0.10): offset, size, CRC-32 (IEEE), magic 1, attributes, timestamp, null key, value. */
function legacyMessage(offset: bigint, value: Buffer): Buffer {
  const body = Buffer.alloc(1 + 1 + 8 + 4 + 4 + value.length);
  body.writeInt8(1, 0); // magic
  body.writeInt8(0, 1); // attributes: no compression
  body.writeBigInt64BE(1_700_000_000_000n, 2);
  body.writeInt32BE(-1, 10); // null key
  body.writeInt32BE(value.length, 14);
  value.copy(body, 18);
  const head = Buffer.alloc(16);
  head.writeBigInt64BE(offset, 0);
  head.writeInt32BE(4 + body.length, 8);
  head.writeUInt32BE(crc32(body), 12);
  return Buffer.concat([head, body]);
}

/**
 * Rewrites, in place, the v2 batch holding `needle` as a v1 message set of exactly its size (at its
 * offset), as a log written before Kafka 0.11 holds it. `small`: a first message shorter than a v2
 * batch header, then one that fills the rest; else one message over the whole batch.
 */
function legacyInPlaceOf(topic: string, partition: number, needle: string, small: boolean): void {
  const dir = join(kafka.dataDir, `${topic}-${partition}`);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.log'))) {
    const file = join(dir, name);
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from(needle));
    if (at < 0) continue;
    let pos = 0;
    while (pos + 12 + bytes.readInt32BE(pos + 8) <= at) pos += 12 + bytes.readInt32BE(pos + 8);
    const offset = bytes.readBigInt64BE(pos);
    const size = 12 + bytes.readInt32BE(pos + 8);
    const fill = (total: number) => legacyMessage(offset, Buffer.alloc(total - 34, 'x'));
    const set = small ? Buffer.concat([fill(40), fill(size - 40)]) : fill(size);
    expect(set.length).toBe(size);
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, set, 0, set.length, pos);
    } finally {
      closeSync(fd);
    }
    return;
  }
  throw new Error(`${needle} not found in the segments of ${topic}-${partition}`);
}

describe('damaged record batches (private broker)', () => {
  for (const Reader of [KafkajsPartitionReader, PlatformaticPartitionReader])
    it(`a batch that stays damaged is fetched again, then its partition stops with an actionable error; the others go on (${Reader.name})`, async () => {
      const topic = await topicWith(2);
      await produce(topic, 0, ['{"cents":1}', '{"cents":100}', '{"cents":3}']);
      await produce(topic, 1, ['{"cents":5}', '{"cents":6}']);
      const repair = damage(topic, 0, '{"cents":100}', '{"cents":900}');

      const schema = freshSchema('crc');
      const group = randomName('crc');
      const store = new PostgresStore({ connectionString: databaseUrl(), schema, poolMax: 4 });
      cleanup(() => store.close());
      await store.migrate();
      const applied: Array<[number, string]> = [];
      const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: string() }, async (m) => {
        applied.push([m.partition, m.value]);
      });
      const run = () => {
        const logger = captureLogger();
        const stopped: Array<{ partition: number; offset: bigint; error: Error }> = [];
        const worker = createWorker(app, {
          store,
          reader: new Reader({ brokers: kafka.brokers, logger, retries: 2, retryBackoffMs: 20 }),
          logger,
          fetchMaxWaitMs: 100,
          closeOnStop: false,
        });
        worker.on('partition-stopped', (s) => stopped.push(s));
        workers.push(worker);
        return { worker, logger, stopped };
      };

      const first = run();
      await first.worker.start();
      await until(() => first.stopped.length > 0 && applied.filter(([p]) => p === 1).length === 2, 'partition 0 stopped');
      const [stop] = first.stopped;
      expect(stop!.partition).toBe(0);
      expect(stop!.offset).toBe(1n);
      expect(stop!.error).toBeInstanceOf(OncelyError);
      expect((stop!.error as OncelyError).code).toBe('CORRUPT_RECORD_BATCH');
      expect(stop!.error.message).toContain(`${topic}/0`);
      expect(stop!.error.message).toMatch(/CRC-32C/);
      expect(stop!.error.message).toMatch(/offsets reset/); // says what to do
      // It was retried as a protocol error first: refetches, logged, before the stop.
      expect(first.logger.lines.filter((l) => l.includes('fetch retry') && l.includes('CRC-32C')).length).toBeGreaterThan(0);
      expect(first.logger.lines.some((l) => l.startsWith('error') && l.includes('CRC-32C'))).toBe(true);
      expect(first.worker.progress().find((p) => p.partition === 0)).toMatchObject({ nextOffset: 1n, stopped: { offset: 1n } });
      expect(first.worker.state).toBe('running');
      await first.worker.stop();
      const of = (partition: number) => applied.filter(([p]) => p === partition).map(([, v]) => v);
      expect(of(0)).toEqual(['{"cents":1}']);
      expect(of(1)).toEqual(['{"cents":5}', '{"cents":6}']);

      // Once the broker serves good bytes again, the next run resumes at the stored position.
      repair();
      const second = run();
      await second.worker.start();
      await until(() => second.worker.progress().find((p) => p.partition === 0)?.nextOffset === 3n, 'partition 0 caught up');
      await second.worker.stop();
      expect(of(0)).toEqual(['{"cents":1}', '{"cents":100}', '{"cents":3}']);
      expect(second.stopped).toEqual([]);
    });

  it('a refetch that comes back intact is used: a damaged read is a retriable error, not a wrong value', async () => {
    const topic = await topicWith(1);
    await produce(topic, 0, ['{"cents":100}']);
    const repair = damage(topic, 0, '{"cents":100}', '{"cents":900}');
    const lines: string[] = [];
    // The first refetch is announced before its back-off: the bytes are repaired in between.
    const watching = (l: Logger): Logger => ({
      ...l,
      debug: (message, fields) => {
        l.debug(message, fields);
        if (message === 'fetch retry' && String(fields?.error).includes('CRC-32C')) repair();
      },
      child: (fields) => watching(l.child(fields)),
    });
    const logger = watching(captureLogger(lines));
    const reader = new KafkajsPartitionReader({ brokers: kafka.brokers, logger, retries: 5, retryBackoffMs: 20 });
    try {
      const [result] = await reader.fetch([{ topic, partition: 0, offset: 0n }], { maxWaitMs: 100 });
      expect(result?.kind).toBe('records');
      if (result?.kind !== 'records') return;
      expect(result.records.map((r) => r.value?.toString())).toEqual(['{"cents":100}']);
      expect(lines.filter((l) => l.includes('fetch retry')).length).toBe(1);
    } finally {
      await reader.close();
    }
  });

  it('a message set of format v0/v1 stops its partition with MESSAGE_FORMAT_UNSUPPORTED, small or large, instead of no progress or endless retries', async () => {
    const topic = await topicWith(2);
    const pad = 'p'.repeat(40); // batches large enough to hold two v1 messages
    await produce(topic, 0, [`{"n":0,"pad":"${pad}"}`, `{"n":1,"pad":"${pad}"}`, `{"n":2,"pad":"${pad}"}`]);
    await produce(topic, 1, [`{"n":10,"pad":"${pad}"}`, `{"n":11,"pad":"${pad}"}`]);
    legacyInPlaceOf(topic, 0, '{"n":1,', true); // a first message of 40 bytes: shorter than a v2 batch header
    legacyInPlaceOf(topic, 1, '{"n":10,', false);

    const schema = freshSchema('fmt');
    const store = new PostgresStore({ connectionString: databaseUrl(), schema, poolMax: 4 });
    cleanup(() => store.close());
    await store.migrate();
    const applied: Array<[number, string]> = [];
    const app = defineApp<Knex.Transaction>({ group: randomName('fmt') }).handle({ topic, codec: string() }, async (m) => {
      applied.push([m.partition, m.value]);
    });
    const logger = captureLogger();
    const stopped: Array<{ partition: number; offset: bigint; error: Error }> = [];
    const worker = createWorker(app, {
      store,
      reader: new KafkajsPartitionReader({ brokers: kafka.brokers, logger, retries: 2, retryBackoffMs: 20 }),
      logger,
      fetchMaxWaitMs: 100,
      closeOnStop: false,
    });
    workers.push(worker);
    worker.on('partition-stopped', (e) => stopped.push(e));
    await worker.start();
    await until(() => stopped.length === 2, 'both partitions stopped', 30_000);
    expect(stopped.map((e) => [e.partition, e.offset]).sort()).toEqual([
      [0, 1n],
      [1, 0n],
    ]);
    for (const e of stopped) {
      expect(OncelyError.is(e.error, 'MESSAGE_FORMAT_UNSUPPORTED')).toBe(true);
      expect(e.error.message).toMatch(new RegExp(`${topic}/${e.partition} holds a message set in the unsupported format v1`));
      expect(e.error.message).toMatch(/format v2 \(Kafka 0\.11 and later\)/);
    }
    // Stopped at once: no retries of a fetch that no retry can fix.
    expect(logger.lines.filter((l) => l.includes('fetch failed; retrying'))).toEqual([]);
    expect(worker.state).toBe('running');
    await worker.stop();
    expect(applied).toEqual([[0, `{"n":0,"pad":"${pad}"}`]]);
  });
});
