/**
 * Outages are logged once per change of state, in the worker's format: a broker down for ~10 s
 * used to print ~1,000 kafkajs ERROR lines per worker, and a PostgreSQL outage printed pg-pool's raw
 * "Connection Error: Connection ended unexpectedly" lines outside the log format. The real binary
 * runs against a private broker (or a private PostgreSQL cluster); its stderr is counted.
 */
import { resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { makeProjectionTables } from '../cli/support.js';
import { startOncely } from '../support/cli.js';
import { brokers, createTopic, databaseUrl, freshSchema, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { privateBroker, privatePostgres } from './support.js';

const V1 = resolve(import.meta.dirname, '../cli/fixtures/projection-v1.ts');
/** A line of the worker's logger (consoleLogger): ISO time, level, message. */
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) \S/;
/** "A handful": the lines one outage may print (down, retries backing off, back). */
const HANDFUL = 12;

async function produce(brokerList: string[], topic: string, partitions: number, perPartition: number, from: number) {
  const producer = new Kafka({ clientId: 'log-flood-test', brokers: brokerList, logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  try {
    for (let p = 0; p < partitions; p++) {
      await producer.send({
        topic,
        messages: Array.from({ length: perPartition }, (_, j) => ({
          partition: p,
          value: JSON.stringify({ account: `a-${j % 5}`, cents: 1, seq: from + j }),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

async function positionsReach(url: string, schema: string, group: string, partitions: number, offset: number): Promise<boolean> {
  const { Client } = await import('pg');
  const c = new Client({ connectionString: url });
  try {
    await c.connect();
    const r = await c.query<{ n: number }>(
      `select count(*)::int as n from ${schema}.partitions where group_id = $1 and next_offset >= $2`,
      [group, offset],
    );
    return r.rows[0]!.n === partitions;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Lines of `text` from `from` (a character index) on, without the empty last one. */
const linesFrom = (text: string, from: number) =>
  text
    .slice(from)
    .split('\n')
    .filter((l) => l.length > 0);

describe('outages log one line per change of state, in the worker format', () => {
  it('a broker down for ~10 s: a handful of lines, every one in the log format', async () => {
    const kafka = await privateBroker();
    const topic = randomName('flood');
    const admin = new Kafka({ clientId: 'log-flood-test', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
    await admin.disconnect();
    const schema = freshSchema('flood');
    await makeProjectionTables(schema);
    await produce(kafka.brokers, topic, 3, 10, 0);
    const group = randomName('g');
    const run = startOncely(['run', V1, '--schema', schema, '--brokers', kafka.brokers.join(','), '--fetch-max-wait', '100'], {
      APP_SCHEMA: schema,
      APP_TOPIC: topic,
      APP_GROUP: group,
      ONCELY_LOG_LEVEL: 'info',
    });
    let stderr = '';
    run.child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await until(() => positionsReach(databaseUrl(), schema, group, 3, 10), 'the first records applied');
    const mark = stderr.length;
    await kafka.stop();
    await new Promise((r) => setTimeout(r, 10_000));
    await kafka.start();
    await produce(kafka.brokers, topic, 3, 10, 10);
    await until(() => positionsReach(databaseUrl(), schema, group, 3, 20), 'records applied after the broker came back', 120_000);
    const during = linesFrom(stderr, mark);
    run.child.kill('SIGTERM');
    const r = await run.result;
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    console.log(`broker outage of 10 s: ${during.length} log line(s) from the worker:\n${during.join('\n')}`);
    for (const l of linesFrom(r.stderr, 0)) expect(l).toMatch(LOG_LINE);
    expect(during.length, during.join('\n')).toBeLessThanOrEqual(HANDFUL);
    // The outage is reported (not silent), and so is the recovery.
    expect(during.join('\n')).toMatch(/unreachable|unavailable|retrying/);
  });

  it('a PostgreSQL outage: no raw "Connection Error" line, every line in the log format', async () => {
    const pg = await privatePostgres();
    const topic = await createTopic(2);
    const migrate = startOncely(['migrate'], { DATABASE_URL: pg.url });
    expect((await migrate.result).code).toBe(0);
    const { Client } = await import('pg');
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    const schema = 'app';
    await admin.query(`create schema ${schema}`);
    await admin.query(
      `create table ${schema}.records (partition int, "offset" bigint, account text, cents int, seq int, primary key (partition, "offset"))`,
    );
    await admin.query(`create table ${schema}.applications (id bigserial primary key, partition int, "offset" bigint)`);
    await admin.end();
    await produce(brokers(), topic, 2, 10, 0);
    const group = randomName('g');
    const run = startOncely(['run', V1, '--fetch-max-wait', '100', '--lease', '3000'], {
      DATABASE_URL: pg.url,
      APP_SCHEMA: schema,
      APP_TOPIC: topic,
      APP_GROUP: group,
      ONCELY_LOG_LEVEL: 'info',
    });
    let stderr = '';
    run.child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await until(() => positionsReach(pg.url, 'oncely', group, 2, 10), 'the first records applied');
    const mark = stderr.length;
    await pg.outage(6000);
    await produce(brokers(), topic, 2, 10, 10);
    await until(() => positionsReach(pg.url, 'oncely', group, 2, 20), 'records applied after PostgreSQL came back', 120_000);
    const during = linesFrom(stderr, mark);
    run.child.kill('SIGTERM');
    const r = await run.result;
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    console.log(`PostgreSQL outage of 6 s: ${during.length} log line(s) from the worker:\n${during.join('\n')}`);
    expect(r.stderr).not.toMatch(/^Connection Error/m);
    for (const l of linesFrom(r.stderr, 0)) expect(l).toMatch(LOG_LINE);
    expect(during.length, during.join('\n')).toBeLessThanOrEqual(HANDFUL);
    expect(during.join('\n')).toMatch(/unavailable/);
  });
});
