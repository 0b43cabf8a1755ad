/**
 * Node 24 warns about a negative timer delay that kafkajs 2.2.4 sets on every connection
 * (`TimeoutNegativeWarning`, printed once per process by every worker and CLI command). oncely's
 * adapter arms that timer without the warning; this test connects both oncely's reader and a plain
 * kafkajs client (the same kafkajs copy, as the CLI's admin calls use) and listens for it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KafkajsPartitionReader } from '../../packages/core/src/kafkajs/index.js';
import { silentLogger } from '../../packages/core/src/logger.js';
import { brokers, createTopic, kafkaClient } from '../support/fixtures.js';

describe('kafkajs on Node 24', () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  afterEach(() => {
    process.off('warning', onWarning);
  });

  it('connects, reads metadata and offsets without a TimeoutNegativeWarning', async () => {
    process.on('warning', onWarning);
    const topic = await createTopic(2);
    const reader = new KafkajsPartitionReader({ brokers: brokers(), logger: silentLogger });
    const admin = kafkaClient('oncely-warnings').admin();
    try {
      await reader.connect();
      expect(await reader.partitions(topic)).toEqual([0, 1]);
      const marks = await reader.highWatermarks(topic, [0, 1]);
      expect([...marks.values()]).toEqual([0n, 0n]);
      await admin.connect();
      expect((await admin.fetchTopicOffsets(topic)).length).toBe(2);
    } finally {
      await admin.disconnect();
      await reader.close();
    }
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(warnings.map((w) => `${w.name}: ${w.message}`).filter((w) => w.startsWith('TimeoutNegativeWarning'))).toEqual([]);
  });
});
