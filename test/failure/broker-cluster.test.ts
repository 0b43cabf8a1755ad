/**
 * Faults of one broker of a real 3-node KRaft cluster (started by this file): a partition whose
 * only replica is down must not hold back the partitions whose leaders are up, and a leader that
 * moves (preferred-leader election, a reassignment that removes the old leader) must be followed
 * at once, not when metadata ages out. Every record is applied exactly once throughout.
 */
import { randomBytes } from 'node:crypto';
import { KafkajsPartitionReader, silentLogger } from '@oncely/core';
import type { Produced } from '@oncely/examples';
import { highWatermarks, waitCaughtUp } from '@oncely/examples';
import { type Admin, Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, freshSchema, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { expectExactlyOnce, startLedger } from './outage-support.js';
import { type PrivateCluster, privateCluster } from './support.js';

let cluster: PrivateCluster;
let admin: Admin;
/** Sees the cluster's leaders (kafkajs's admin refuses a topic with a leaderless partition). */
let observer: KafkajsPartitionReader;

const kafka = (brokers: string[]) => new Kafka({ clientId: 'cluster-test', brokers, logLevel: logLevel.NOTHING });

beforeAll(async () => {
  // Auto leader balancing every second: a reordered replica list makes the controller elect the
  // new preferred leader (what `kafka-leader-election.sh --election-type preferred` does).
  cluster = await privateCluster(3, { 'leader.imbalance.check.interval.seconds': 1 });
  admin = kafka(cluster.brokers).admin();
  await admin.connect();
  observer = new KafkajsPartitionReader({ brokers: cluster.brokers, logger: silentLogger, metadataMaxAgeMs: 0 });
}, 300_000);

afterAll(async () => {
  await admin?.disconnect().catch(() => {});
  await observer?.close();
});

/** The partition's leader now (undefined while it has none). */
async function leaderNow(topic: string, partition: number): Promise<number | undefined> {
  await observer.partitions(topic); // reloads the metadata
  return observer.leaderOf(topic, partition)?.nodeId;
}

/** Creates a topic whose partitions have exactly these replicas (the first one is the preferred leader). */
async function createTopic(replicas: number[][]): Promise<string> {
  const topic = randomName('cluster');
  await admin.createTopics({
    waitForLeaders: false,
    topics: [{ topic, replicaAssignment: replicas.map((r, partition) => ({ partition, replicas: r })) }],
  });
  // kafkajs's own wait for the leaders gives up when a broker has not heard of the topic yet
  // (UNKNOWN_TOPIC_OR_PARTITION, seen on a cluster just started): wait until every partition has one.
  const led = async () => (await Promise.all(replicas.map((_r, p) => leaderNow(topic, p)))).every((l) => l !== undefined);
  await until(() => led().catch(() => false), `the leaders of ${topic}`, 60_000);
  return topic;
}

/** Leader and replicas of a partition, as the cluster's metadata has them now. */
async function partitionState(topic: string, partition: number) {
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  const p = md.topics[0]!.partitions.find((x) => x.partitionId === partition)!;
  return { leader: p.leader, replicas: p.replicas, isr: p.isr };
}

/**
 * Sends `count` payments round-robin to `partitions` through an already connected producer (one
 * that created no new metadata request: kafkajs refuses a topic with a leaderless partition) and
 * adds them to `produced`.
 */
async function sendPayments(
  producer: Producer,
  topic: string,
  partitions: number[],
  count: number,
  produced: Produced,
): Promise<void> {
  const run = randomBytes(3).toString('hex');
  for (let sent = 0; sent < count; ) {
    const n = Math.min(50, count - sent);
    const batch = Array.from({ length: n }, (_, i) => {
      const account = `acct-${String(Math.floor(Math.random() * 20)).padStart(3, '0')}`;
      const cents = Math.floor(Math.random() * 20_000) - 9_000;
      return { id: `${run}-${sent + i}`, account, cents, partition: partitions[(sent + i) % partitions.length]! };
    });
    await producer.send({
      topic,
      acks: -1,
      messages: batch.map((p) => ({
        key: p.account,
        partition: p.partition,
        value: JSON.stringify({ id: p.id, account: p.account, cents: p.cents }),
      })),
    });
    for (const p of batch) {
      produced.expectedBalances.set(p.account, (produced.expectedBalances.get(p.account) ?? 0n) + BigInt(p.cents));
      produced.ids.add(p.id);
    }
    produced.count += n;
    sent += n;
  }
}

const emptyProduced = (): Produced => ({ count: 0, expectedBalances: new Map(), ids: new Set() });

describe('a 3-broker KRaft cluster', () => {
  it('keeps committing the partitions whose leaders are up while one partition has no leader, then resumes it exactly once', async () => {
    // Replication factor 1: partition p lives on node p + 1 only.
    const topic = await createTopic([[1], [2], [3]]);
    const run = await startLedger({ databaseUrl: databaseUrl(), brokers: cluster.brokers, topic, schema: freshSchema('hol') });
    const events: string[] = [];
    run.worker.on('commit', (c) => {
      events.push(`commit ${c.partition} ${c.nextOffset}`);
    });
    const producer = kafka(cluster.brokers).producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      const produced = emptyProduced();
      await sendPayments(producer, topic, [0, 1, 2], 300, produced);
      await waitCaughtUp(run.store.knex, run.schema, run.group, topic, await highWatermarks(cluster.brokers, topic), {
        timeoutMs: 60_000,
      });

      await cluster.kill(3);
      events.push('node 3 killed');
      // Node 3 must be known as down before the healthy partitions are asked to move on.
      await until(async () => (await leaderNow(topic, 2)) === undefined, 'partition 2 without a leader', 60_000);
      await sendPayments(producer, topic, [0, 1], 400, produced);
      const targets = await observer.highWatermarks(topic, [0, 1]);
      // Before node 3 comes back, partitions 0 and 1 apply everything sent to them meanwhile.
      await until(
        () => run.worker.progress().every((p) => p.partition === 2 || p.nextOffset >= (targets.get(p.partition) ?? 0n)),
        'partitions 0 and 1 caught up while node 3 is down',
        60_000,
      );
      const p2Before = run.worker.progress().find((p) => p.partition === 2)!.nextOffset;
      events.push('node 3 restarting');
      await cluster.start(3);
      await until(async () => (await leaderNow(topic, 2)) === 3, 'partition 2 led by node 3 again', 60_000);
      await sendPayments(producer, topic, [0, 1, 2], 300, produced);
      await expectExactlyOnce(run, cluster.brokers, topic, produced);

      // The order of events: commits of partitions 0 and 1 between the kill and the restart,
      // none of partition 2 (it had no leader), and partition 2 commits after the restart.
      const killed = events.indexOf('node 3 killed');
      const restarting = events.indexOf('node 3 restarting');
      const during = events.slice(killed + 1, restarting);
      expect(during.filter((e) => e.startsWith('commit 0 ')).length).toBeGreaterThan(0);
      expect(during.filter((e) => e.startsWith('commit 1 ')).length).toBeGreaterThan(0);
      expect(during.filter((e) => e.startsWith('commit 2 '))).toEqual([]);
      expect(events.slice(restarting).some((e) => e.startsWith('commit 2 '))).toBe(true);
      expect(run.worker.progress().find((p) => p.partition === 2)!.nextOffset).toBeGreaterThan(p2Before);

      // One warning when partition 2 started failing, one line when it read again: never one per retry.
      const p2 = run.logs.filter(
        (l) => (l.includes('fetch failed; retrying') || l.includes('fetch recovered')) && l.includes(`${topic}:2`),
      );
      expect(p2.length).toBeGreaterThan(0);
      p2.forEach((line, i) => {
        expect({ i, line: line.includes('fetch failed; retrying') ? 'failed' : 'recovered' }).toEqual({
          i,
          line: i % 2 === 0 ? 'failed' : 'recovered',
        });
      });
      expect(p2.at(-1)).toContain('fetch recovered');
    } finally {
      await producer.disconnect();
    }
  });

  for (const reader of ['kafkajs', 'platformatic'] as const)
    it(`follows a leader move at once (${reader} reader): preferred-leader election, then a reassignment that removes the old leader`, async () => {
      const topic = await createTopic([
        [1, 2, 3],
        [2, 3, 1],
      ]);
      const run = await startLedger({
        databaseUrl: databaseUrl(),
        brokers: cluster.brokers,
        topic,
        schema: freshSchema('lead'),
        reader,
      });
      const producer = kafka(cluster.brokers).producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      try {
        const produced = emptyProduced();
        const caughtUp = async () =>
          waitCaughtUp(run.store.knex, run.schema, run.group, topic, await highWatermarks(cluster.brokers, topic), {
            timeoutMs: 90_000,
          });
        await sendPayments(producer, topic, [0, 1], 200, produced);
        await caughtUp();
        expect(run.reader.leaderOf(topic, 0)?.nodeId).toBe(1);
        const epoch0 = run.reader.leaderOf(topic, 0)!.leaderEpoch;

        // Preferred-leader election: node 2 first in the replica list; the controller elects it and
        // node 1 stays a follower (which Fetch v11 would let answer).
        await admin.alterPartitionReassignments({
          topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [2, 1, 3] }] }],
        });
        await until(async () => (await partitionState(topic, 0)).leader === 2, 'node 2 elected leader of partition 0', 60_000);
        expect((await partitionState(topic, 0)).isr).toContain(1);
        await sendPayments(producer, topic, [0], 200, produced);
        await caughtUp();
        // The first fetch at node 1 was fenced (its epoch is over), so the reader moved to node 2.
        expect(run.reader.leaderOf(topic, 0)).toMatchObject({ nodeId: 2 });
        expect(run.reader.leaderOf(topic, 0)!.leaderEpoch).toBeGreaterThan(epoch0);
        expect(run.logs.some((l) => l.includes('partition leaders moved') && l.includes(`${topic}/0: 1 → 2`))).toBe(true);

        // A reassignment that removes the current leader (node 2) from the replicas of partition 0.
        await admin.alterPartitionReassignments({
          topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [3, 1] }] }],
        });
        await until(
          async () => {
            const s = await partitionState(topic, 0);
            const pending = await admin.listPartitionReassignments({ topics: [{ topic, partitions: [0] }] });
            return s.leader === 3 && s.replicas.length === 2 && pending.topics.length === 0;
          },
          'partition 0 reassigned to nodes 3 and 1, led by 3',
          90_000,
        );
        // The old leader goes away entirely: partition 0 must go on without it (partition 1 fails over).
        await cluster.kill(2);
        await sendPayments(producer, topic, [0], 150, produced);
        const target = (await observer.highWatermarks(topic, [0])).get(0)!;
        await until(
          () => run.worker.progress().find((p) => p.partition === 0)!.nextOffset >= target,
          'partition 0 applied everything while node 2 is down',
          90_000,
        );
        expect(run.reader.leaderOf(topic, 0)).toMatchObject({ nodeId: 3 });
        await cluster.start(2);
        // Produce only once the controller moved partition 1 back to its preferred leader: a
        // producer's records acked during an election can be lost (a client-side hazard of
        // idempotent producers), which the audit would blame on the worker.
        await until(async () => (await leaderNow(topic, 1)) === 2, 'node 2 leads partition 1 again', 60_000);
        await sendPayments(producer, topic, [0, 1], 200, produced);
        await expectExactlyOnce(run, cluster.brokers, topic, produced);
      } finally {
        await producer.disconnect();
      }
    });
});
