/**
 * Prepares the benchmark topic: creates it and fills it with the records of data.ts using a fast
 * kafkajs producer (batches of 2,000 records, fewer for large values so that a request stays
 * under ~512 KiB, within the broker's message size limit; 8 sends in flight, acks from the leader,
 * no compression). A topic of the same name that already holds exactly these records is reused, so a
 * second `pnpm bench` with the same parameters starts at once.
 */
import { type Admin, Kafka, logLevel, Partitioners } from 'kafkajs';
import { accountOf, recordValue } from './data.js';

const CHUNK = 2_000;
const CHUNK_BYTES = 512 * 1024;
const IN_FLIGHT = 8;

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
  } finally {
    await admin.disconnect();
  }

  const chunk = Math.max(1, Math.min(CHUNK, Math.floor(CHUNK_BYTES / (valueBytes + 16))));
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const started = performance.now();
  let next = 0;
  let lastLog = started;
  const sendChunks = async () => {
    while (next < records) {
      const from = next;
      const to = Math.min(records, from + chunk);
      next = to;
      const messages = new Array(to - from);
      for (let seq = from; seq < to; seq++) messages[seq - from] = { key: accountOf(seq), value: recordValue(seq, valueBytes) };
      await producer.send({ topic, messages, acks: 1 });
      if (performance.now() - lastLog > 5_000) {
        lastLog = performance.now();
        log(`  produced ${to.toLocaleString('en-US')} / ${records.toLocaleString('en-US')}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, sendChunks));
  } finally {
    await producer.disconnect();
  }
  const produceMs = performance.now() - started;
  const check = await recordsIn(kafka, topic);
  if (check?.records !== records && attempt < 3) {
    // A new topic's leaders can refuse the first sends (NOT_LEADER) after createTopics returned, and
    // the producer's retry of a request that partly succeeded writes some records twice: the topic
    // is made again (the recreate path above), by then with settled leaders.
    log(`topic ${topic}: holds ${check?.records} records after producing ${records} (a retried send); producing it again`);
    return prepareTopic({ ...opts, attempt: attempt + 1 });
  }
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
