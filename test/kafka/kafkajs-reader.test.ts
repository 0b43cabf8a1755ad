import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, KafkaUnavailableError } from '../../packages/core/src/errors.js';
import { KafkajsPartitionReader, type KafkajsReaderOptions } from '../../packages/core/src/kafkajs/index.js';
import { silentLogger } from '../../packages/core/src/logger.js';
import { brokers, createTopic, kafkaClient, randomName } from '../support/fixtures.js';
import { freePort } from '../support/ports.js';
import { readerContract } from './reader-contract.js';

const make = (options: Partial<KafkajsReaderOptions> = {}) =>
  new KafkajsPartitionReader({ brokers: brokers(), logger: silentLogger, ...options });

readerContract('kafkajs', () => make());

describe('KafkajsPartitionReader (kafkajs specifics)', () => {
  const open: KafkajsPartitionReader[] = [];
  const reader = (options: Partial<KafkajsReaderOptions> = {}) => {
    const r = make(options);
    open.push(r);
    return r;
  };
  afterEach(async () => {
    for (const r of open.splice(0)) await r.close();
  });

  it('rejects a bad option with a ConfigError naming it', () => {
    expect(() => make({ maxWaitMs: -1 })).toThrow(ConfigError);
    expect(() => make({ maxWaitMs: -1 })).toThrow(/maxWaitMs/);
    expect(() => make({ brokers: [] })).toThrow(/brokers/);
    expect(() => make({ brokers: ['no-port'] })).toThrow(/brokers/);
    expect(() => make({ isolationLevel: 'dirty' as never })).toThrow(/isolationLevel/);
    expect(() => make({ maxBytes: 10, maxBytesPerPartition: 100 })).toThrow(/maxBytes/);
    const ok = make({ maxWaitMs: 0 });
    expect(ok.options.maxWaitMs).toBe(0);
    expect(ok.options.maxBytesPerPartition).toBe(1024 * 1024);
    expect(Object.isFrozen(ok.options)).toBe(true);
  });

  it('fails with a retriable KafkaUnavailableError when no broker answers', async () => {
    // A port the OS just handed out and nothing listens on.
    const r = reader({ brokers: [`127.0.0.1:${await freePort()}`], retries: 1, retryBackoffMs: 10, connectionTimeoutMs: 500 });
    const err = await r.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KafkaUnavailableError);
    expect(err).toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true });
  });

  it('under read_uncommitted returns aborted transactional records but never control records', async () => {
    const topic = await createTopic(1);
    const producer = kafkaClient().producer({ transactionalId: randomName('tx'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const tx = await producer.transaction();
    await tx.send({ topic, messages: [{ value: 'a1', partition: 0 }] });
    await tx.abort();
    const tx2 = await producer.transaction();
    await tx2.send({ topic, messages: [{ value: 'c1', partition: 0 }] });
    await tx2.commit();
    await producer.disconnect();

    const r = reader({ isolationLevel: 'read_uncommitted' });
    // The commit marker (offset 3) is written by the coordinator after commit() returns: follow
    // nextOffset until it is behind us.
    const seen: Array<[bigint, string | undefined]> = [];
    let next = 0n;
    for (let i = 0; i < 100 && next < 4n; i++) {
      const [res] = await r.fetch([{ topic, partition: 0, offset: next }], { maxWaitMs: 100 });
      if (res?.kind !== 'records') throw new Error(`unexpected ${res?.kind}`);
      seen.push(...res.records.map((x): [bigint, string | undefined] => [x.offset, x.value?.toString()]));
      next = res.nextOffset;
    }
    expect(seen).toEqual([
      [0n, 'a1'],
      [2n, 'c1'],
    ]);
    expect(next).toBe(4n);
  });

  it('fails a fetch that meets a codec with no usable package with COMPRESSION_UNSUPPORTED naming it', async () => {
    const topic = await createTopic(1, { configEntries: [{ name: 'compression.type', value: 'snappy' }] });
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'x', partition: 0 }] });
    await producer.disconnect();

    const r = reader();
    await r.connect();
    // Simulates a process where kafkajs-snappy is not installed: kafkajs's own placeholder.
    const codecs = CompressionCodecs as unknown as Record<number, () => unknown>;
    const registered = codecs[CompressionTypes.Snappy]!;
    codecs[CompressionTypes.Snappy] = () => {
      const e = new Error('Snappy compression not implemented');
      e.name = 'KafkaJSNotImplemented';
      throw e;
    };
    try {
      const err = await r.fetch([{ topic, partition: 0, offset: 0n }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'COMPRESSION_UNSUPPORTED', retriable: false });
      expect((err as Error).message).toMatch(/snappy/);
      expect((err as Error).message).toMatch(/kafkajs-snappy/);
    } finally {
      codecs[CompressionTypes.Snappy] = registered;
    }
    const [ok] = await r.fetch([{ topic, partition: 0, offset: 0n }]);
    expect(ok?.kind === 'records' && ok.records.map((x) => x.value?.toString())).toEqual(['x']);
  });

  it('knows the leader and leader epoch of every partition it reads (Metadata v7), which its fetches carry', async () => {
    const topic = await createTopic(2);
    const r = reader();
    expect(r.leaderOf(topic, 0)).toBeUndefined();
    await r.fetch([{ topic, partition: 1, offset: 0n }], { maxWaitMs: 0 });
    for (const p of [0, 1]) {
      const leader = r.leaderOf(topic, p);
      expect(leader?.nodeId).toBeGreaterThanOrEqual(0);
      expect(leader?.leaderEpoch).toBeGreaterThanOrEqual(0);
    }
  });

  it('keeps reading after a topic it read before is deleted', async () => {
    // Made here rather than by the fixture: the test deletes it itself.
    const gone = randomName('gone');
    const admin = kafkaClient().admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: gone, numPartitions: 1, replicationFactor: 1 }] });
    const topic = await createTopic(1);
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'still', partition: 0 }] });
    await producer.disconnect();

    const r = reader({ retryBackoffMs: 50 });
    await r.fetch([{ topic: gone, partition: 0, offset: 0n }], { maxWaitMs: 0 });
    await admin.deleteTopics({ topics: [gone] });
    await admin.disconnect();
    const [res] = await r.fetch([{ topic, partition: 0, offset: 0n }]);
    expect(res?.kind === 'records' && res.records.map((x) => x.value?.toString())).toEqual(['still']);
  });
});
