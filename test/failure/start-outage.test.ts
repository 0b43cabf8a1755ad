/**
 * Outages at start-up are waited out like outages later on: `oncely run` started while the
 * database is down, while the only listed broker is down, or while another transaction holds a
 * partition row, waits with back-off (one log line per change of what it waits for), comes up when
 * the service does and applies every record. A start-up that cannot succeed (an unknown topic) still
 * fails at once, and the wait is bounded by --start-timeout. Private cluster and broker: the shared
 * services are never stopped.
 */
import { resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startOncely } from '../support/cli.js';
import { brokers, createTopic, databaseUrl, freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { freePort } from '../support/ports.js';
import { FIXTURES, oncely, privateBroker, privatePostgres } from './support.js';

const APP = resolve(FIXTURES, 'table-app.ts');

async function produce(brokerList: string[], topic: string, partitions: number, perPartition: number): Promise<void> {
  const producer = new Kafka({ clientId: 'start-outage', brokers: brokerList, logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  for (let p = 0; p < partitions; p++) {
    await producer.send({
      topic,
      messages: Array.from({ length: perPartition }, (_, i) => ({ partition: p, value: JSON.stringify({ i }) })),
    });
  }
  await producer.disconnect();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const createTable = (c: pg.Client | pg.Pool, table: string) =>
  c.query(`create table ${table} (partition int, "offset" bigint, primary key (partition, "offset"))`);

/** Starts `oncely run <table-app> --until caught-up` and exposes its stderr as it arrives. */
function run(env: Record<string, string>, extra: string[] = []) {
  const started = startOncely(['run', APP, '--until', 'caught-up', '--no-progress', ...extra], {
    ONCELY_LOG_LEVEL: 'info',
    ...env,
  });
  let stderr = '';
  let exited = false;
  started.child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  started.child.on('exit', () => {
    exited = true;
  });
  const waitFor = (pattern: RegExp, what: string) =>
    until(() => {
      if (pattern.test(stderr)) return true;
      if (exited) throw new Error(`oncely run exited while we waited for ${what}:\n${stderr}`);
      return false;
    }, what);
  return { ...started, waitFor, stderr: () => stderr };
}

/** The lines of a run's log that say what start-up is waiting for. */
const waitingLines = (stderr: string) => stderr.split('\n').filter((l) => /start-up waiting/.test(l));

describe('outages at start-up are waited out (private services)', () => {
  it('PostgreSQL down at start: the worker waits, comes up when the database does, and applies every record', async () => {
    const db = await privatePostgres();
    const topic = await createTopic(2);
    await produce(brokers(), topic, 2, 15);
    const table = 'app.applied';
    await withClient(db.url, async (c) => {
      await c.query('create schema app');
      await createTable(c, table);
    });
    await db.stop();
    const r = run({ DATABASE_URL: db.url, APP_TABLE: table, APP_GROUP: randomName('g'), APP_TOPIC: topic });
    try {
      await r.waitFor(/start-up waiting.*PostgreSQL/, 'the start-up wait for PostgreSQL');
      await db.start();
      const result = await r.result;
      expect(result.code, result.stderr).toBe(0);
      expect(waitingLines(result.stderr).length, result.stderr).toBeLessThanOrEqual(3);
      expect(result.stderr).toMatch(/start-up: .* available again/);
      const n = await withClient(db.url, async (c) => (await c.query(`select count(*)::int as n from ${table}`)).rows[0].n);
      expect(n).toBe(30);
    } finally {
      r.child.kill('SIGKILL');
    }
  });

  it('the only listed broker down at start: the worker waits, comes up when the broker does, and applies every record', async () => {
    const kafka = await privateBroker();
    const topic = randomName('t');
    const admin = new Kafka({ clientId: 'start-outage', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] });
    await admin.disconnect();
    await produce(kafka.brokers, topic, 2, 15);
    const schema = freshSchema('sb');
    const table = `${schema}_app.applied`;
    await pgPool().query(`create schema ${schema}_app`);
    await createTable(pgPool(), table);
    await kafka.stop();
    const r = run({
      KAFKA_BROKERS: kafka.brokers.join(','),
      ONCELY_SCHEMA: schema,
      APP_TABLE: table,
      APP_GROUP: randomName('g'),
      APP_TOPIC: topic,
    });
    try {
      await r.waitFor(/start-up waiting.*Kafka/, 'the start-up wait for Kafka');
      await kafka.start();
      const result = await r.result;
      expect(result.code, result.stderr).toBe(0);
      expect(waitingLines(result.stderr).length, result.stderr).toBeLessThanOrEqual(3);
      expect((await pgPool().query(`select count(*)::int as n from ${table}`)).rows[0].n).toBe(30);
    } finally {
      r.child.kill('SIGKILL');
      await pgPool().query(`drop schema if exists ${schema}_app cascade`);
    }
    // A private broker started twice: slow on a loaded machine.
  }, 300_000);

  it('a partition row locked by another transaction at start: the worker waits for the lock, then applies', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema('sl');
    const table = `${schema}.applied`;
    const group = randomName('g');
    const env = { ONCELY_SCHEMA: schema, APP_TABLE: table, APP_GROUP: group, APP_TOPIC: topic };
    const migrated = await oncely(['migrate', '--schema', schema]);
    expect(migrated.code, migrated.stderr).toBe(0);
    await createTable(pgPool(), table);
    await produce(brokers(), topic, 2, 10);
    const first = await oncely(['run', APP, '--until', 'caught-up', '--no-progress'], env);
    expect(first.code, first.stderr).toBe(0);
    await produce(brokers(), topic, 2, 10);

    const locker = new pg.Client({ connectionString: databaseUrl() });
    await locker.connect();
    let r: ReturnType<typeof run> | undefined;
    try {
      await locker.query('begin');
      await locker.query(`select * from ${schema}.partitions where group_id = $1 and partition = 1 for update`, [group]);
      r = run(env);
      await r.waitFor(/start-up waiting.*lock/, 'the start-up wait for the row lock');
      await locker.query('rollback');
      const result = await r.result;
      expect(result.code, result.stderr).toBe(0);
      expect(waitingLines(result.stderr).length, result.stderr).toBeLessThanOrEqual(3);
      expect((await pgPool().query(`select count(*)::int as n from ${table}`)).rows[0].n).toBe(40);
    } finally {
      r?.child.kill('SIGKILL');
      await locker.end();
    }
  });

  it('the wait is bounded by --start-timeout; a start that cannot succeed (unknown topic) fails at once', async () => {
    const schema = freshSchema('st');
    const table = `${schema}.applied`;
    const migrated = await oncely(['migrate', '--schema', schema]);
    expect(migrated.code, migrated.stderr).toBe(0);
    await createTable(pgPool(), table);
    const env = { ONCELY_SCHEMA: schema, APP_TABLE: table, APP_GROUP: randomName('g'), APP_TOPIC: randomName('t') };

    // Nothing listens there: Kafka stays unavailable, and the run gives up when the bound is reached.
    const nowhere = `127.0.0.1:${await freePort()}`;
    const bounded = await oncely(['run', APP, '--start-timeout', '3000'], { ...env, KAFKA_BROKERS: nowhere });
    expect(bounded.code, bounded.stderr).toBe(1);
    expect(bounded.stderr).toMatch(/start-up waiting.*Kafka/);
    expect(bounded.stderr).toMatch(/gave up after .* \(start timeout 3000 ms/);

    // No back-off can create a topic: the run fails although the wait is unbounded (0 = forever).
    const missing = await oncely(['run', APP, '--start-timeout', '0'], env);
    // A missing topic is configuration (exit 2), as docs/cli.md says.
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toMatch(/TOPIC_NOT_FOUND|does not exist/);
    expect(waitingLines(missing.stderr)).toEqual([]);
  });
});
