import { createOffsetMirror, silentLogger } from '@oncely/core';
import { describe, expect, it } from 'vitest';
import { brokers, createTopic, kafkaClient, randomName } from '../support/fixtures.js';

const commit = (topic: string, partition: number, nextOffset: bigint) => ({
  topic,
  partition,
  fromOffset: nextOffset - 1n,
  nextOffset,
  records: 1,
  epoch: 1n,
  durationMs: 1,
  highWatermark: nextOffset,
});

describe('createOffsetMirror against Kafka', () => {
  it('coalesces a burst of commits into few writes; the latest position of every partition wins', async () => {
    const topic = await createTopic(2);
    const groupId = randomName('mirror');
    const mirror = createOffsetMirror({ brokers: brokers(), groupId, logger: silentLogger });
    // 400 commits arrive synchronously: at most one write is in flight, the rest coalesce.
    for (let i = 1; i <= 200; i++) {
      mirror.onCommit(commit(topic, 0, BigInt(i)));
      mirror.onCommit(commit(topic, 1, BigInt(i * 2)));
    }
    await mirror.close();
    mirror.onCommit(commit(topic, 0, 999n)); // after close: ignored
    expect(mirror.failures).toBe(0);
    expect(mirror.writes).toBeGreaterThanOrEqual(1);
    expect(mirror.writes).toBeLessThanOrEqual(2);
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      expect(offsets!.partitions.sort((a, b) => a.partition - b.partition).map((p) => p.offset)).toEqual(['200', '400']);
    } finally {
      await admin.disconnect();
    }
  });
});
