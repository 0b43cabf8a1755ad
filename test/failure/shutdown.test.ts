/**
 * Shutdown: a second signal aborts a statement that is still running (the backend is cancelled, so
 * the transaction rolls back at once instead of after the statement), and nothing a listener or a
 * handler leaves behind (a failing listener, a floating rejected promise) ends the process without
 * draining and releasing its claims. Real processes against the real broker and database.
 */
import { resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { collect, spawnTs, startOncely } from '../support/cli.js';
import { brokers, createTopic, freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { FIXTURES, oncely } from './support.js';

const APP = resolve(FIXTURES, 'table-app.ts');

async function produce(topic: string, partitions: number, perPartition: number): Promise<void> {
  const producer = new Kafka({ clientId: 'shutdown-test', brokers: brokers(), logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  for (let p = 0; p < partitions; p++) {
    await producer.send({
      topic,
      messages: Array.from({ length: perPartition }, (_, i) => ({ partition: p, value: JSON.stringify({ i }) })),
    });
  }
  await producer.disconnect();
}

async function setup(partitions: number, perPartition: number) {
  const topic = await createTopic(partitions);
  const schema = freshSchema('sd');
  const table = `${schema}.applied`;
  const group = randomName('g');
  const migrated = await oncely(['migrate', '--schema', schema]);
  expect(migrated.code, migrated.stderr).toBe(0);
  await pgPool().query(`create table ${table} (partition int, "offset" bigint, primary key (partition, "offset"))`);
  await produce(topic, partitions, perPartition);
  return { topic, schema, table, group, env: { ONCELY_SCHEMA: schema, APP_TABLE: table, APP_GROUP: group, APP_TOPIC: topic } };
}

const owners = async (schema: string, group: string) =>
  (
    await pgPool().query<{ owner: string | null; next_offset: string }>(
      `select owner, next_offset::text from ${schema}.partitions where group_id = $1 order by partition`,
      [group],
    )
  ).rows;

describe('shutdown (real processes)', () => {
  it('a second SIGTERM cancels a running statement: the transaction rolls back and the process exits 130', async () => {
    const s = await setup(1, 5);
    const run = startOncely(['run', APP], { ...s.env, APP_SLEEP_OFFSET: '0', APP_SLEEP_S: '900', ONCELY_LOG_LEVEL: 'info' });
    let stdout = '';
    let stderr = '';
    run.child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    run.child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // The statement carries the table's name: other tests' statements on the server do not count.
    const mine = `query like 'select pg_sleep(%${s.table}%' and pid <> pg_backend_pid()`;
    const sleeping = async () =>
      (await pgPool().query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where ${mine} and state = 'active'`))
        .rows[0]!.n;
    try {
      await until(async () => stdout.includes('sleeping in 0/0') && (await sleeping()) > 0, 'the handler in pg_sleep');
      run.child.kill('SIGTERM'); // drains: the in-flight transaction may finish (it will not)
      // Two signals sent at once may reach the process as one: the second goes once the first arrived.
      await until(() => stderr.includes('draining'), 'the drain');
      run.child.kill('SIGTERM'); // aborts: the statement is cancelled, the transaction rolls back
      const r = await run.result;
      expect(r.code, r.stderr).toBe(130);
      expect(await sleeping()).toBe(0);
      expect((await pgPool().query(`select count(*)::int as n from ${s.table}`)).rows[0].n).toBe(0);
      expect(await owners(s.schema, s.group)).toEqual([{ owner: null, next_offset: '0' }]);
    } finally {
      run.child.kill('SIGKILL');
      await pgPool().query(`select pg_terminate_backend(pid) from pg_stat_activity where ${mine}`);
    }
  });

  it('event listeners that throw or reject (any promise kind) never end the process; SIGTERM drains and releases', async () => {
    const s = await setup(2, 20);
    const child = spawnTs('test/failure/fixtures/listener-worker.ts', s.env);
    const result = collect(child);
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    let exited = false;
    child.on('exit', () => {
      exited = true;
    });
    try {
      await until(() => {
        if (exited) throw new Error('the worker process ended by itself');
        return stdout.includes('applied 40');
      }, 'every record applied');
      child.kill('SIGTERM');
      const r = await result;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('stopped');
      expect(r.stderr).toMatch(/a worker event listener failed; ignored.*foreign promise rejects/);
      expect(r.stderr).toMatch(/a worker event listener failed; ignored.*state listener rejects while draining/);
      expect(await owners(s.schema, s.group)).toEqual([
        { owner: null, next_offset: '20' },
        { owner: null, next_offset: '20' },
      ]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('oncely run: a floating rejected promise (left by a handler) drains, releases the claims and exits 1', async () => {
    const s = await setup(2, 10);
    const r = await oncely(['run', APP], { ...s.env, APP_FLOATING_REJECTION_OFFSET: '3' });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/unhandled rejection.*floating rejection at 3/i);
    const rows = await owners(s.schema, s.group);
    expect(rows.map((x) => x.owner)).toEqual([null, null]);
  });
});
