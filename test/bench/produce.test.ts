/**
 * The benchmark's producer (bench/produce.ts) writes its own record batches and Produce requests:
 * the topic it makes must hold exactly the records of bench/data.ts, each once, in the partition
 * kafkajs's default partitioner gives its key (the scenarios' checks and the COPY ceilings assume
 * the records kafkajs's producer wrote), in sequence order within a partition, with a reused topic
 * left as it is.
 */
import { type KafkaMessage, Partitioners } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { accountOf, recordValue } from '../../bench/data.js';
import { prepareTopic } from '../../bench/produce.js';
import { brokers, deleteTopic, kafkaClient, randomName } from '../support/fixtures.js';

const records = 5_000;
const partitions = 3;
const valueBytes = 150;
const topic = randomName('oncely-bench-produce');

afterAll(() => deleteTopic(topic));

async function readAll(): Promise<Array<{ partition: number; message: KafkaMessage }>> {
  const consumer = kafkaClient('oncely-test-bench-produce').consumer({
    groupId: randomName('oncely-bench-produce-check'),
  });
  const seen: Array<{ partition: number; message: KafkaMessage }> = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${seen.length} of ${records} records in 60 s`)), 60_000);
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            seen.push({ partition, message });
            if (seen.length >= records) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

describe('bench producer', () => {
  it('writes each record of data.ts once, in its key partition, in sequence order', async () => {
    const made = await prepareTopic({ brokers: brokers(), topic, partitions, records, valueBytes, log: () => {} });
    expect(made.reused).toBe(false);

    const seen = await readAll();
    expect(seen).toHaveLength(records);
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    const seqs = new Set<number>();
    const lastSeq = new Map<number, number>();
    for (const { partition, message } of seen) {
      const value = message.value!.toString('utf8');
      const seq = (JSON.parse(value) as { seq: number }).seq;
      expect(value).toBe(recordValue(seq, valueBytes));
      expect(message.key?.toString('utf8')).toBe(accountOf(seq));
      expect(message.headers).toEqual({});
      expect(partition).toBe(partitioner({ topic, partitionMetadata, message: { key: accountOf(seq), value: null } }));
      expect(seq).toBeGreaterThan(lastSeq.get(partition) ?? -1);
      lastSeq.set(partition, seq);
      seqs.add(seq);
    }
    expect(seqs.size).toBe(records);
    expect(Math.min(...seqs)).toBe(0);
    expect(Math.max(...seqs)).toBe(records - 1);

    const again = await prepareTopic({ brokers: brokers(), topic, partitions, records, valueBytes, log: () => {} });
    expect(again.reused).toBe(true);
  });
});
