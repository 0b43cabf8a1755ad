/**
 * The PartitionReader contract: what any adapter must do against a real broker. An adapter's test
 * file calls {@link readerContract} with a factory; every case makes its own random topic.
 *
 * The factory must give a reader with default options (read_committed) on the test broker.
 */
import { randomUUID } from 'node:crypto';
import { CompressionTypes, type Message } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import type { FetchedRecords, FetchResult, PartitionReader, RawRecord } from '../../packages/core/src/reader/index.js';
import { createTopic, kafkaClient, randomName } from '../support/fixtures.js';

/** Sends messages to one partition in one produce request (so: one record batch). */
async function produce(
  topic: string,
  partition: number,
  messages: Array<Omit<Message, 'partition'>>,
  compression?: CompressionTypes,
): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, compression, messages: messages.map((m) => ({ ...m, partition })) });
  } finally {
    await producer.disconnect();
  }
}

/** Sends each value in its own produce request (one record batch each). */
async function produceEach(topic: string, partition: number, values: string[]): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  try {
    for (const value of values) await producer.send({ topic, acks: -1, messages: [{ value, partition }] });
  } finally {
    await producer.disconnect();
  }
}

function records(r: FetchResult | undefined): FetchedRecords {
  expect(r?.kind).toBe('records');
  return r as FetchedRecords;
}

const text = (b: Buffer | null) => (b === null ? null : b.toString('utf8'));

/**
 * Follows nextOffset from `from` until it reaches `end`, collecting records. Fails (instead of
 * looping forever) when a fetch makes no progress short of `end`, or after `maxFetches`.
 */
async function readUntil(
  reader: PartitionReader,
  topic: string,
  partition: number,
  from: bigint,
  end: bigint,
  opts: { maxBytes?: number; maxFetches?: number } = {},
): Promise<{ records: RawRecord[]; next: bigint; fetches: number }> {
  const out: RawRecord[] = [];
  let next = from;
  let fetches = 0;
  while (next < end) {
    fetches++;
    if (fetches > (opts.maxFetches ?? 100)) throw new Error(`no end after ${fetches - 1} fetches: at ${next}, want ${end}`);
    const [r] = await reader.fetch([{ topic, partition, offset: next, maxBytes: opts.maxBytes }], { maxWaitMs: 100 });
    const got = records(r);
    if (got.nextOffset <= next)
      throw new Error(`no progress at offset ${next} (high watermark ${got.highWatermark}, want ${end})`);
    for (const rec of got.records) expect(rec.offset).toBeGreaterThanOrEqual(next);
    out.push(...got.records);
    next = got.nextOffset;
  }
  return { records: out, next, fetches };
}

/**
 * The end a read_committed reader can reach once the broker has written a transaction's marker:
 * the transaction coordinator writes markers after commit()/abort() return, so this polls
 * (bounded) until the end is `expected`, and returns what it saw last.
 */
async function settledEnd(reader: PartitionReader, topic: string, expected: bigint): Promise<bigint | undefined> {
  let end: bigint | undefined;
  for (let i = 0; i < 100; i++) {
    end = (await reader.highWatermarks(topic, [0])).get(0);
    if (end === expected) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return end;
}

/** Declares the PartitionReader contract suite for one adapter. */
export function readerContract(name: string, makeReader: () => PartitionReader): void {
  describe(`PartitionReader contract: ${name}`, () => {
    const open: PartitionReader[] = [];
    const reader = async () => {
      const r = makeReader();
      open.push(r);
      await r.connect();
      return r;
    };
    afterEach(async () => {
      for (const r of open.splice(0)) await r.close();
    });

    it('fetches exactly the records at and after an explicit offset, in order, with key, value, headers and timestamp', async () => {
      const topic = await createTopic(1);
      const base = Date.now() - 60_000;
      const producer = kafkaClient().producer();
      await producer.connect();
      for (let i = 0; i < 5; i++) {
        await producer.send({
          topic,
          messages: [
            {
              partition: 0,
              key: i === 3 ? null : `k${i}`,
              value: i === 4 ? null : `v${i}`,
              timestamp: String(base + i * 1000),
              headers: { trace: `t${i}`, dup: ['first', 'second'] },
            },
          ],
        });
      }
      await producer.disconnect();

      const r = await reader();
      const [res] = await r.fetch([{ topic, partition: 0, offset: 2n }]);
      const got = records(res);
      expect(got.topic).toBe(topic);
      expect(got.partition).toBe(0);
      expect(got.fetchOffset).toBe(2n);
      expect(got.highWatermark).toBe(5n);
      expect(got.nextOffset).toBe(5n);
      expect(got.records.map((x) => x.offset)).toEqual([2n, 3n, 4n]);
      expect(got.records.map((x) => text(x.key))).toEqual(['k2', null, 'k4']);
      expect(got.records.map((x) => text(x.value))).toEqual(['v2', 'v3', null]);
      expect(got.records.map((x) => x.timestamp)).toEqual([base + 2000, base + 3000, base + 4000]);
      expect(got.records[0]?.headers.map(([k, v]) => [k, text(v)])).toEqual([
        ['trace', 't2'],
        ['dup', 'first'],
        ['dup', 'second'],
      ]);
    });

    it('starts in the middle of a record batch without returning the records before the offset', async () => {
      const topic = await createTopic(1);
      await produce(
        topic,
        0,
        Array.from({ length: 10 }, (_, i) => ({ value: `m${i}` })),
      );
      const r = await reader();
      const [res] = await r.fetch([{ topic, partition: 0, offset: 4n }]);
      const got = records(res);
      expect(got.records.map((x) => x.offset)).toEqual([4n, 5n, 6n, 7n, 8n, 9n]);
      expect(got.records.map((x) => text(x.value))).toEqual(['m4', 'm5', 'm6', 'm7', 'm8', 'm9']);
      expect(got.nextOffset).toBe(10n);
    });

    it('fetches several partitions in one call and answers in request order', async () => {
      const topic = await createTopic(3);
      await produce(topic, 0, [{ value: 'a0' }, { value: 'a1' }]);
      await produce(topic, 1, [{ value: 'b0' }]);
      await produce(topic, 2, [{ value: 'c0' }, { value: 'c1' }, { value: 'c2' }]);
      const r = await reader();
      const res = await r.fetch([
        { topic, partition: 2, offset: 1n },
        { topic, partition: 0, offset: 0n },
        { topic, partition: 1, offset: 1n },
      ]);
      expect(res).toHaveLength(3);
      const [c, a, b] = res.map(records);
      expect([c?.partition, a?.partition, b?.partition]).toEqual([2, 0, 1]);
      expect(c?.records.map((x) => text(x.value))).toEqual(['c1', 'c2']);
      expect(c?.nextOffset).toBe(3n);
      expect(a?.records.map((x) => text(x.value))).toEqual(['a0', 'a1']);
      expect(a?.nextOffset).toBe(2n);
      expect(b?.records).toEqual([]);
      expect(b?.nextOffset).toBe(1n);
      expect(b?.highWatermark).toBe(1n);
    });

    it('hands each result to onResult once, before the promise resolves, the same as the resolved ones', async () => {
      const topic = await createTopic(3);
      await produce(topic, 0, [{ value: 'a0' }]);
      await produce(topic, 2, [{ value: 'c0' }, { value: 'c1' }]);
      const r = await reader();
      const events: string[] = [];
      const delivered: FetchResult[] = [];
      const pending = r
        .fetch(
          [
            { topic, partition: 2, offset: 0n },
            { topic, partition: 0, offset: 0n },
            { topic, partition: 1, offset: 0n },
          ],
          {
            maxWaitMs: 200,
            onResult: (res) => {
              events.push(`result ${res.partition}`);
              delivered.push(res);
            },
            onError: (e) => events.push(`error ${e.message}`),
          },
        )
        .then((res) => {
          events.push('resolved');
          return res;
        });
      const res = await pending;
      expect(events.at(-1)).toBe('resolved');
      expect(events.slice(0, -1).sort()).toEqual(['result 0', 'result 1', 'result 2']);
      const byPartition = (list: FetchResult[]) => [...list].sort((a, b) => a.partition - b.partition);
      expect(byPartition(delivered)).toEqual(byPartition(res));
      expect(records(res[0]).records.map((x) => text(x.value))).toEqual(['c0', 'c1']);
      // Nothing is delivered after the promise settled.
      await new Promise((done) => setTimeout(done, 300));
      expect(events.at(-1)).toBe('resolved');
    });

    it('fetches the partitions of one call independently: one that cannot be fetched fails alone (onError), the others arrive', async () => {
      const topic = await createTopic(1);
      await produce(topic, 0, [{ value: 'ok' }]);
      const missing = randomName('missing');
      const r = await reader();
      const results: FetchResult[] = [];
      const errors: Array<{ code: string; topic: string }> = [];
      const outcome = await r
        .fetch(
          [
            { topic: missing, partition: 0, offset: 0n },
            { topic, partition: 0, offset: 0n },
          ],
          {
            maxWaitMs: 100,
            onResult: (res) => results.push(res),
            onError: (e, req) => errors.push({ code: e.code, topic: req.topic }),
          },
        )
        .then(
          () => 'resolved',
          (e: unknown) => e,
        );
      expect(outcome).toMatchObject({ code: 'TOPIC_NOT_FOUND' });
      expect(errors).toEqual([{ code: 'TOPIC_NOT_FOUND', topic: missing }]);
      expect(results.map((x) => [x.topic, records(x).records.map((y) => text(y.value))])).toEqual([[topic, ['ok']]]);
    });

    it('returns no records and nextOffset == fetchOffset at the high watermark after the long poll', async () => {
      const topic = await createTopic(1);
      await produce(topic, 0, [{ value: 'x' }, { value: 'y' }]);
      const r = await reader();
      const [res] = await r.fetch([{ topic, partition: 0, offset: 2n }], { maxWaitMs: 200 });
      const got = records(res);
      expect(got.records).toEqual([]);
      expect(got.nextOffset).toBe(2n);
      expect(got.fetchOffset).toBe(2n);
      expect(got.highWatermark).toBe(2n);
    });

    it('makes progress with a tiny maxBytes per partition (an oversized first batch still comes back)', async () => {
      const topic = await createTopic(1);
      const values = Array.from({ length: 8 }, (_, i) => `${i}:${'x'.repeat(2000)}`);
      await produceEach(topic, 0, values);
      const r = await reader();
      const { records: got, next, fetches } = await readUntil(r, topic, 0, 0n, 8n, { maxBytes: 1 });
      expect(next).toBe(8n);
      expect(got.map((x) => text(x.value))).toEqual(values);
      // One batch per fetch at most, since each batch is larger than the limit.
      expect(fetches).toBe(8);
    });

    it('under read_committed skips aborted transactions and reaches the high watermark by following nextOffset', async () => {
      const topic = await createTopic(1);
      const kafka = kafkaClient();
      const producer = kafka.producer({ transactionalId: randomName('tx'), idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const aborted = await producer.transaction();
      await aborted.send({ topic, messages: ['a1', 'a2', 'a3'].map((value) => ({ value, partition: 0 })) });
      await aborted.abort();
      const committed = await producer.transaction();
      await committed.send({ topic, messages: ['c1', 'c2'].map((value) => ({ value, partition: 0 })) });
      await committed.commit();

      // The log ends in a commit marker: only nextOffset (not "last record + 1") gets past it.
      const r = await reader();
      const end = await settledEnd(r, topic, 7n);
      expect(end).toBe(7n); // 3 aborted + abort marker + 2 committed + commit marker
      const first = await readUntil(r, topic, 0, 0n, end!);
      expect(first.records.map((x) => text(x.value))).toEqual(['c1', 'c2']);
      expect(first.next).toBe(end);
      const [tail] = await r.fetch([{ topic, partition: 0, offset: first.next }], { maxWaitMs: 100 });
      expect(records(tail).records).toEqual([]);
      expect(records(tail).nextOffset).toBe(first.next);
      expect(records(tail).highWatermark).toBe(end);

      // Only an aborted transaction after that: the fetches return nothing yet still move to the end.
      const again = await producer.transaction();
      await again.send({ topic, messages: ['x1', 'x2'].map((value) => ({ value, partition: 0 })) });
      await again.abort();
      await producer.disconnect();
      const end2 = await settledEnd(r, topic, 10n);
      expect(end2).toBe(10n);
      const second = await readUntil(r, topic, 0, first.next, end2!);
      expect(second.records).toEqual([]);
      expect(second.next).toBe(end2);

      await produce(topic, 0, [{ value: 'plain' }]);
      const [last] = await r.fetch([{ topic, partition: 0, offset: second.next }]);
      expect(records(last).records.map((x) => [x.offset, text(x.value)])).toEqual([[10n, 'plain']]);
      expect(records(last).nextOffset).toBe(11n);
      // From inside the committed transaction, the same data comes back and nothing aborted.
      const [fromCommitted] = await r.fetch([{ topic, partition: 0, offset: 5n }]);
      expect(records(fromCommitted).records.map((x) => text(x.value))).toEqual(['c2', 'plain']);
      expect(records(fromCommitted).nextOffset).toBe(11n);
    });

    for (const [codec, setup] of [
      ['gzip', { compression: CompressionTypes.GZIP }],
      ['snappy', { topicCompression: 'snappy' }],
      ['lz4', { topicCompression: 'lz4' }],
      ['zstd', { topicCompression: 'zstd' }],
    ] as const) {
      it(`decodes ${codec}-compressed record batches`, async () => {
        // gzip is compressed by the producer; the others by the broker (topic compression.type),
        // so the test needs no compressor of its own.
        const topicCompression = 'topicCompression' in setup ? setup.topicCompression : undefined;
        const topic = await createTopic(1, {
          configEntries: topicCompression ? [{ name: 'compression.type', value: topicCompression }] : [],
        });
        const values = Array.from({ length: 50 }, (_, i) => `${codec}-${i}-${randomUUID()}`.repeat(5));
        await produce(
          topic,
          0,
          values.map((value, i) => ({ key: `k${i}`, value, headers: { h: `${i}` } })),
          'compression' in setup ? setup.compression : undefined,
        );
        const r = await reader();
        const [res] = await r.fetch([{ topic, partition: 0, offset: 10n }]);
        const got = records(res);
        expect(got.records.map((x) => text(x.value))).toEqual(values.slice(10));
        expect(got.records.map((x) => text(x.key))).toEqual(values.slice(10).map((_, i) => `k${i + 10}`));
        expect(got.records[0]?.headers.map(([k, v]) => [k, text(v)])).toEqual([['h', '10']]);
        expect(got.nextOffset).toBe(50n);
      });
    }

    it('reads across the gaps compaction leaves: offsets jump, a fetch inside a gap starts after it, nextOffset reaches the end', {
      timeout: 120_000,
    }, async () => {
      const topic = await createTopic(1, {
        configEntries: [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'segment.ms', value: '100' },
          { name: 'min.cleanable.dirty.ratio', value: '0.001' },
          { name: 'min.compaction.lag.ms', value: '0' },
          { name: 'max.compaction.lag.ms', value: '100' },
          { name: 'delete.retention.ms', value: '100' },
        ],
      });
      // One batch each: a0 a1 a2 b0 a3 (offsets 0-4); c0 after a pause rolls the segment, so the
      // cleaner may compact 0-4 down to b0 (3) and a3 (4).
      for (const [key, value] of [
        ['a', 'a0'],
        ['a', 'a1'],
        ['a', 'a2'],
        ['b', 'b0'],
        ['a', 'a3'],
      ] as const)
        await produce(topic, 0, [{ key, value }]);
      await new Promise((res) => setTimeout(res, 300));
      await produce(topic, 0, [{ key: 'c', value: 'c0' }]);

      const r = await reader();
      let seen: Array<[bigint, string | null]> = [];
      // The log cleaner runs on its own schedule (every 15 s at most when idle): wait for it, bounded.
      for (let i = 0; i < 200; i++) {
        const { records: got, next } = await readUntil(r, topic, 0, 0n, 6n);
        expect(next).toBe(6n);
        seen = got.map((x) => [x.offset, text(x.value)]);
        if (!seen.some(([o]) => o === 0n)) break;
        await new Promise((res) => setTimeout(res, 500));
      }
      expect(seen).toEqual([
        [3n, 'b0'],
        [4n, 'a3'],
        [5n, 'c0'],
      ]);
      // From inside a gap: the first record after it (a fetch may stop at a segment's end).
      const [inGap] = await r.fetch([{ topic, partition: 0, offset: 1n }]);
      expect(records(inGap).records[0]?.offset).toBe(3n);
      const fromGap = await readUntil(r, topic, 0, 1n, 6n);
      expect(fromGap.records.map((x) => [x.offset, text(x.value)])).toEqual(seen);
    });

    it('reports out-of-range above the high watermark, per partition, next to healthy partitions', async () => {
      const topic = await createTopic(2);
      await produce(topic, 0, [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
      await produce(topic, 1, [{ value: 'z' }]);
      const r = await reader();
      const [bad, good] = await r.fetch([
        { topic, partition: 0, offset: 10n },
        { topic, partition: 1, offset: 0n },
      ]);
      expect(bad).toEqual({
        kind: 'out-of-range',
        topic,
        partition: 0,
        fetchOffset: 10n,
        logStartOffset: 0n,
        highWatermark: 3n,
      });
      expect(records(good).records.map((x) => text(x.value))).toEqual(['z']);
    });

    it('reports out-of-range below the log start offset with the new log start', async () => {
      const topic = await createTopic(1);
      await produceEach(
        topic,
        0,
        Array.from({ length: 6 }, (_, i) => `v${i}`),
      );
      const admin = kafkaClient().admin();
      await admin.connect();
      try {
        // kafkajs's deleteTopicRecords needs the topic's metadata loaded first.
        await admin.fetchTopicMetadata({ topics: [topic] });
        await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }] });
      } finally {
        await admin.disconnect();
      }
      const r = await reader();
      const [res] = await r.fetch([{ topic, partition: 0, offset: 1n }]);
      expect(res?.kind).toBe('out-of-range');
      expect(res?.logStartOffset).toBe(4n);
      expect(res?.highWatermark).toBe(6n);
      expect((await r.resolveOffsets(topic, [0], 'earliest')).get(0)).toBe(4n);
      const [ok] = await r.fetch([{ topic, partition: 0, offset: 4n }]);
      expect(records(ok).records.map((x) => text(x.value))).toEqual(['v4', 'v5']);
    });

    it('resolves earliest, latest and timestamps to offsets', async () => {
      const topic = await createTopic(2);
      const base = Date.now() - 3_600_000;
      await produce(
        topic,
        0,
        [0, 1, 2].map((i) => ({ value: `v${i}`, timestamp: String(base + i * 1000) })),
      );
      const r = await reader();
      expect(await r.resolveOffsets(topic, [0, 1], 'earliest')).toEqual(
        new Map([
          [0, 0n],
          [1, 0n],
        ]),
      );
      expect(await r.resolveOffsets(topic, [0, 1], 'latest')).toEqual(
        new Map([
          [0, 3n],
          [1, 0n],
        ]),
      );
      expect((await r.resolveOffsets(topic, [0], { timestamp: base + 500 })).get(0)).toBe(1n);
      expect((await r.resolveOffsets(topic, [0], { timestamp: base + 2000 })).get(0)).toBe(2n);
      expect((await r.resolveOffsets(topic, [0], { timestamp: base - 1 })).get(0)).toBe(0n);
      // No record at or after: the high watermark.
      expect((await r.resolveOffsets(topic, [0], { timestamp: Date.now() + 3_600_000 })).get(0)).toBe(3n);
    });

    it('reports the high watermark of each partition', async () => {
      const topic = await createTopic(3);
      await produce(topic, 0, [{ value: '1' }, { value: '2' }, { value: '3' }]);
      await produce(topic, 2, [{ value: '1' }]);
      const r = await reader();
      expect(await r.highWatermarks(topic, [0, 1, 2])).toEqual(
        new Map([
          [0, 3n],
          [1, 0n],
          [2, 1n],
        ]),
      );
    });

    it('lists the partitions of a topic, and rejects a missing topic with TOPIC_NOT_FOUND', async () => {
      const topic = await createTopic(3);
      const r = await reader();
      expect(await r.partitions(topic)).toEqual([0, 1, 2]);
      const missing = randomName('missing');
      await expect(r.partitions(missing)).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
      // Asking did not create it.
      await expect(r.partitions(missing)).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    });

    it('joins no consumer group and commits nothing to Kafka', async () => {
      const topic = await createTopic(2);
      await produce(topic, 0, [{ value: 'a' }, { value: 'b' }]);
      const admin = kafkaClient().admin();
      await admin.connect();
      try {
        const before = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
        const r = await reader();
        await r.partitions(topic);
        await r.resolveOffsets(topic, [0, 1], 'earliest');
        const res = await r.fetch([
          { topic, partition: 0, offset: 0n },
          { topic, partition: 1, offset: 0n },
        ]);
        expect(records(res[0]).records).toHaveLength(2);
        const during = (await admin.listGroups()).groups.map((g) => g.groupId);
        await r.close();
        const after = (await admin.listGroups()).groups.map((g) => g.groupId);
        const added = [...new Set([...during, ...after])].filter((g) => !before.has(g));
        // Other test files may make groups concurrently; none of them touches this random topic.
        for (const groupId of added) {
          const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
          expect({ groupId, offsets: offsets.flatMap((t) => t.partitions.map((p) => p.offset)) }).toEqual({
            groupId,
            offsets: ['-1', '-1'],
          });
          const described = await admin.describeGroups([groupId]);
          for (const g of described.groups) {
            for (const m of g.members) expect(m.memberAssignment.toString('latin1')).not.toContain(topic);
          }
        }
        expect(added.filter((g) => g.includes('oncely'))).toEqual([]);
      } finally {
        await admin.disconnect();
      }
    });

    it('close() ends a pending long poll promptly (the fetch rejects with AbortedError or resolves empty)', async () => {
      const topic = await createTopic(1);
      const r = await reader();
      const pending = r.fetch([{ topic, partition: 0, offset: 0n }], { maxWaitMs: 60_000 });
      const outcome = pending.then(
        (res) => ({ resolved: res }),
        (e: unknown) => ({ rejected: e }),
      );
      await new Promise((res) => setTimeout(res, 300));
      const closed = r.close().then(() => 'closed' as const);
      const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 10_000).unref());
      expect(await Promise.race([closed, timeout])).toBe('closed');
      const result = await Promise.race([outcome, timeout]);
      expect(result).not.toBe('timeout');
      if (typeof result === 'object' && 'rejected' in result) {
        expect(result.rejected).toMatchObject({ code: 'ABORTED' });
      } else if (typeof result === 'object') {
        expect(records(result.resolved[0]).records).toEqual([]);
      }
      // A closed reader refuses work.
      await expect(r.fetch([{ topic, partition: 0, offset: 0n }])).rejects.toMatchObject({ code: 'ABORTED' });
    });

    it('an abort signal ends a fetch wait promptly, and the reader goes on serving fetches', async () => {
      const topic = await createTopic(1);
      const r = await reader();
      const ac = new AbortController();
      const outcome = r.fetch([{ topic, partition: 0, offset: 0n }], { maxWaitMs: 60_000, signal: ac.signal }).then(
        (res) => ({ resolved: res }),
        (e: unknown) => ({ rejected: e }),
      );
      await new Promise((res) => setTimeout(res, 300));
      ac.abort();
      const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 10_000).unref());
      const result = await Promise.race([outcome, timeout]);
      expect(result).not.toBe('timeout');
      if (typeof result === 'object' && 'rejected' in result) {
        expect(result.rejected).toMatchObject({ code: 'ABORTED' });
      } else if (typeof result === 'object') {
        expect(records(result.resolved[0]).records).toEqual([]);
      }
      await produce(topic, 0, [{ value: 'after-abort' }]);
      const [later] = await r.fetch([{ topic, partition: 0, offset: 0n }], { maxWaitMs: 100 });
      expect(records(later).records.map((x) => text(x.value))).toEqual(['after-abort']);
    });
  });
}
