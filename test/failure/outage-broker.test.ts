/**
 * The Kafka broker is SIGKILLed mid-stream and restarted on its data: the worker's fetches fail and
 * back off with bounded, logged retries, it keeps its stored position and resumes; every payment
 * is applied exactly once. Runs against a private broker: the shared one is never touched.
 */
import { defineApp, json, KafkajsPartitionReader, silentLogger, workerMetrics } from '@oncely/core';
import { Kafka, logLevel } from 'kafkajs';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { cleanup } from '../support/cleanup.js';
import { databaseUrl, freshSchema, randomName } from '../support/fixtures.js';
import { realWorker, until } from '../support/oncely.js';
import { expectExactlyOnce, expectLeasesHeld, paymentStream, startLedger } from './outage-support.js';
import { privateBroker } from './support.js';

describe('Kafka broker crash mid-stream (private broker)', () => {
  it('backs off, resumes at its stored position and applies every record exactly once', async () => {
    const kafka = await privateBroker();
    const topic = randomName('payments');
    const admin = new Kafka({ clientId: 'outage-test', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
    await admin.disconnect();

    const run = await startLedger({ databaseUrl: databaseUrl(), brokers: kafka.brokers, topic, schema: freshSchema('bkout') });
    const first = await paymentStream(kafka.brokers, topic, 1500);
    const committed = () => run.worker.progress().reduce((a, p) => a + p.committedRecords, 0);
    await until(() => committed() > 200, 'some payments applied before the crash');
    const atCrash = committed();
    await kafka.crash(3000);
    // Produce after the restart too: the worker must pick up new records, not only old ones.
    const second = await paymentStream(kafka.brokers, topic, 1000);
    for (const id of second.ids) first.ids.add(id);
    for (const [a, c] of second.expectedBalances) first.expectedBalances.set(a, (first.expectedBalances.get(a) ?? 0n) + c);
    first.count += second.count;
    await expectExactlyOnce(run, kafka.brokers, topic, first);
    expect(committed()).toBeGreaterThan(atCrash);
    await expectLeasesHeld(run, topic, run.worker.options.workerId);
    const retries = run.logs.filter((l) => l.includes('fetch failed; retrying'));
    expect(retries.length).toBeGreaterThan(0);
    for (const l of retries) expect(Number(/"retryInMs":(\d+)/.exec(l)?.[1])).toBeLessThanOrEqual(10_000);
  });

  it('stops reporting a lag it cannot refresh: while fetches fail the lag sample goes and how long they have failed is shown', async () => {
    const kafka = await privateBroker();
    const topic = randomName('lagstale');
    const client = new Kafka({ clientId: 'lag-test', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
    const admin = client.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] });
    await admin.disconnect();
    const producer = client.producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 5 }, (_, n) => ({ value: JSON.stringify({ n }) })) });
    await producer.disconnect();
    const app = defineApp<Knex.Transaction>({ group: randomName('lag') }).handle({ topic, codec: json() }, async () => {});
    const w = await realWorker(app, freshSchema('lagstale'), {
      reader: new KafkajsPartitionReader({ brokers: kafka.brokers, logger: silentLogger, requestTimeoutMs: 2000 }),
    });
    const metrics = workerMetrics(w, { lagStaleAfterMs: 1000 });
    cleanup(() => metrics.stop());
    const sample = async (name: string) => {
      const text = await metrics.registry.metrics();
      const m = text.match(new RegExp(`^${name}\\{[^}]*topic="${topic}"[^}]*\\} (\\S+)$`, 'm'));
      return m ? Number(m[1]) : undefined;
    };
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 5n, 'caught up');
    await until(async () => (await sample('oncely_partition_lag')) === 0, 'lag 0 reported');
    expect(await sample('oncely_partition_fetch_failing_seconds')).toBe(0);

    await kafka.stop();
    await until(() => (w.progress()[0]?.fetchFailingMs ?? 0) >= 1000, 'fetches failing for a second');
    expect(await sample('oncely_partition_lag')).toBeUndefined();
    expect(await sample('oncely_partition_fetch_failing_seconds')).toBeGreaterThanOrEqual(1);
    expect(w.state).toBe('running');

    await kafka.start();
    await until(() => w.progress()[0]?.fetchFailingMs === undefined, 'fetching again');
    await until(async () => (await sample('oncely_partition_lag')) === 0, 'lag reported again');
    expect(await sample('oncely_partition_fetch_failing_seconds')).toBe(0);
    await w.stop();
  });
});
