import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, KafkaUnavailableError } from '../../packages/core/src/errors.js';
import { silentLogger } from '../../packages/core/src/logger.js';
import { PlatformaticPartitionReader, type PlatformaticReaderOptions } from '../../packages/core/src/platformatic/index.js';
import { brokers, createTopic, kafkaClient, randomName } from '../support/fixtures.js';
import { freePort } from '../support/ports.js';
import { readerContract } from './reader-contract.js';

const make = (options: Partial<PlatformaticReaderOptions> = {}) =>
  new PlatformaticPartitionReader({ brokers: brokers(), logger: silentLogger, ...options });

readerContract('platformatic', () => make());

describe('PlatformaticPartitionReader (platformatic specifics)', () => {
  const open: PlatformaticPartitionReader[] = [];
  const reader = (options: Partial<PlatformaticReaderOptions> = {}) => {
    const r = make(options);
    open.push(r);
    return r;
  };
  afterEach(async () => {
    for (const r of open.splice(0)) await r.close();
  });

  it('rejects a bad option with a ConfigError naming it, with the kafkajs reader checks', () => {
    expect(() => make({ maxWaitMs: -1 })).toThrow(/maxWaitMs/);
    expect(() => make({ brokers: [] })).toThrow(/brokers/);
    expect(() => make({ isolationLevel: 'dirty' as never })).toThrow(/isolationLevel/);
    // kafkajs's aws mechanism has no counterpart in the library: refused at once, not at connect.
    expect(() => make({ sasl: { mechanism: 'aws' } as never })).toThrow(ConfigError);
    expect(() => make({ sasl: { mechanism: 'aws' } as never })).toThrow(/sasl\.mechanism.*aws/);
    const ok = make({ maxWaitMs: 0, sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' } });
    expect(ok.options.maxWaitMs).toBe(0);
    expect(Object.isFrozen(ok.options)).toBe(true);
  });

  it('fails with a retriable KafkaUnavailableError when no broker answers', async () => {
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

  it('goes on after its fetch connection is dropped under a long poll (the fetch is retried on a new connection)', async () => {
    const topic = await createTopic(1);
    const r = reader({ retryBackoffMs: 20 });
    await r.connect();
    const pending = r.fetch([{ topic, partition: 0, offset: 0n }], { maxWaitMs: 5_000 });
    await new Promise((res) => setTimeout(res, 300));
    const producer = kafkaClient().producer();
    await producer.connect();
    // Drop every fetch socket the reader holds, as a broker restart or a network cut would.
    const fetches = (r as unknown as { wired: { fetches: Iterable<[string, { socket?: { destroy(): void } }]> } }).wired.fetches;
    let dropped = 0;
    for (const [, c] of fetches) {
      c.socket?.destroy();
      dropped++;
    }
    await producer.send({ topic, messages: [{ value: 'after-drop', partition: 0 }] });
    await producer.disconnect();
    const [res] = await pending;
    expect(dropped).toBe(1);
    const got = res?.kind === 'records' ? res.records.map((x) => x.value?.toString()) : [];
    if (got.length === 0) {
      // The retry may have long-polled before the record landed: it is there on the next fetch.
      const [again] = await r.fetch([{ topic, partition: 0, offset: 0n }], { maxWaitMs: 1_000 });
      expect(again?.kind === 'records' && again.records.map((x) => x.value?.toString())).toEqual(['after-drop']);
    } else expect(got).toEqual(['after-drop']);
  });
});
