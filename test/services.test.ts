import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTopic, kafkaClient, pgPool, randomName } from './support/fixtures.js';

// Proves the pinned kafkajs works against the broker the project starts (Kafka 4 removed old
// protocol versions): create, produce, list offsets, offsets by timestamp, read back via a group.
describe('real services', () => {
  it('produces with kafkajs and reads the records back', async () => {
    const topic = await createTopic(2);
    const kafka = kafkaClient();
    const producer = kafka.producer();
    await producer.connect();
    const before = Date.now();
    const values = Array.from({ length: 10 }, (_, i) => `v${i}-${randomUUID()}`);
    await producer.send({ topic, messages: values.map((value, i) => ({ key: `k${i}`, value, partition: i % 2 })) });
    await producer.disconnect();

    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, before - 1000);
    await admin.disconnect();
    expect(offsets.map((o) => Number(o.high)).sort()).toEqual([5, 5]);
    expect(byTime.map((o) => o.offset)).toEqual(['0', '0']);

    const consumer = kafka.consumer({ groupId: randomName('g') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message }) => {
            seen.push(message.value?.toString() ?? '');
            if (seen.length === values.length) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    expect(seen.sort()).toEqual([...values].sort());
  });

  it('writes and reads PostgreSQL', async () => {
    const pool = pgPool();
    const r = await pool.query<{ n: number; v: string }>('select $1::int + 1 as n, version() as v', [41]);
    expect(r.rows[0]?.n).toBe(42);
    expect(r.rows[0]?.v).toMatch(/PostgreSQL/);
  });
});
