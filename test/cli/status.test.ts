/**
 * `oncely status` through the binary: positions come from PostgreSQL, so it works with Kafka
 * unreachable (lag unknown, one note, exit 0); a partition a runner stopped shows where, until the
 * next claim; open dead letters are counted per partition; a worker killed with SIGKILL shows as
 * gone once its PostgreSQL session has ended, by the rule its peers apply, not live until its
 * session timeout; on a schema an older oncely left behind, one line names the missing migration and
 * `oncely migrate`.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTopic, freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { freePort } from '../support/ports.js';
import {
  FIXTURES,
  makeProjectionTables,
  migrateUpTo,
  oncely,
  oncelyBounded,
  producePayments,
  startOncely,
  stderrText,
} from './support.js';

const FAILING = resolve(FIXTURES, 'failing.ts');
const V1 = resolve(FIXTURES, 'projection-v1.ts');
const DEADLINE_MS = 120_000;

/** A topic with `perPartition` payments in each partition, a migrated schema with the projection tables, a group. */
async function setup(partitions: number, perPartition: number) {
  const topic = await createTopic(partitions);
  const schema = freshSchema();
  const group = randomName('g');
  expect((await oncely(['migrate', '--schema', schema])).code).toBe(0);
  await makeProjectionTables(schema);
  await producePayments(topic, partitions, perPartition);
  return { topic, schema, group, env: { ONCELY_SCHEMA: schema, APP_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: group } };
}

interface WorkerRow {
  workerId: string;
  state: string | null;
  live: boolean | null;
  owned: number;
  weight: number;
  sessionTimeoutMs: number | null;
  goneGraceMs: number | null;
}

interface Row {
  partition: number;
  nextOffset: string | null;
  highWatermark: string | null;
  lag: string | null;
  owner: string | null;
  stopped: { offset: string; error: string; at: string } | null;
  deadLetters: number;
}

describe('oncely status: stops, dead letters, and no Kafka', () => {
  it('shows a stopped partition (where and why) and open dead letters per partition; a new claim clears the stop', async () => {
    const { topic, schema, group, env } = await setup(3, 10);

    // Dead letters: seq 0 and 5 of partition 0 (two), with the default onExhausted.
    const first = await oncelyBounded(
      ['run', FAILING, '--until', 'caught-up', '--no-progress'],
      { ...env, APP_FAIL_EVERY: '5', APP_FAIL_PARTITION: '0' },
      DEADLINE_MS,
    );
    expect(first.code, first.stderr).toBe(0);
    // One requeued dead letter is not open any more.
    await pgPool().query(
      `update ${schema}.dead_letters set replayed_at = now() where id = (select min(id) from ${schema}.dead_letters)`,
    );
    // A stop: partition 1 gets 5 more records whose first (seq 10) fails under stop-partition.
    await producePayments(topic, 3, 5, 10);
    const second = await oncelyBounded(
      ['run', FAILING, '--until', 'caught-up', '--no-progress', '--on-exhausted', 'stop-partition'],
      { ...env, APP_FAIL_EVERY: '10', APP_FAIL_PARTITION: '1' },
      DEADLINE_MS,
    );
    expect(second.code, second.stderr).toBe(3);

    const text = await oncely(['status', '--group', group], env);
    expect(text.code, text.stderr).toBe(0);
    // GROUP TOPIC PARTITION NEXT-OFFSET HIGH-WATERMARK LAG STATE DEAD-LETTERS OWNER
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+0\\s+15\\s+15\\s+0\\s+idle\\s+1\\s+no owner\\s`));
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+1\\s+10\\s+15\\s+5\\s+stopped at 10\\s+0\\s+no owner\\s`));
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+2\\s+15\\s+15\\s+0\\s+idle\\s+0\\s+no owner\\s`));
    expect(text.stdout).toContain(
      '3 partition(s), total lag 5, 3 without a live owner, 1 stopped, 1 open dead letter(s) (oncely dlq list)',
    );
    expect(text.stdout).toMatch(new RegExp(`${group} ${topic}:1 stopped at offset 10 \\(\\S+\\): seq 10 fails on purpose`));
    const rows = JSON.parse((await oncely(['status', '--group', group, '--json'], env)).stdout) as Row[];
    expect(rows.map((r) => [r.partition, r.stopped?.offset ?? null, r.stopped?.error ?? null, r.deadLetters])).toEqual([
      [0, null, null, 1],
      [1, '10', 'seq 10 fails on purpose', 0],
      [2, null, null, 0],
    ]);

    // The next run claims partition 1 again: the stop no longer holds, and it catches up.
    const third = await oncelyBounded(
      ['run', FAILING, '--until', 'caught-up', '--no-progress'],
      { ...env, APP_FAIL_EVERY: '10', APP_FAIL_PARTITION: '99' },
      DEADLINE_MS,
    );
    expect(third.code, third.stderr).toBe(0);
    const after = JSON.parse((await oncely(['status', '--group', group, '--json'], env)).stdout) as Row[];
    expect(after.map((r) => [r.partition, r.nextOffset, r.stopped])).toEqual([
      [0, '15', null],
      [1, '15', null],
      [2, '15', null],
    ]);
  });

  it('an empty answer says why: a --group or --topic matching nothing lists the groups there; a schema never migrated says so, exit 2', async () => {
    const { topic, schema, group, env } = await setup(1, 2);
    const reset = await oncely(
      ['offsets', 'reset', '--group', group, '--topic', `${topic}:0`, '--to-earliest', '--execute'],
      env,
    );
    expect(reset.code, reset.stderr).toBe(0);
    const typo = await oncely(['status', '--group', `${group}x`], env);
    expect(typo.code, typo.stderr).toBe(0);
    expect(typo.stdout).toBe(`no stored positions for group ${group}x in schema ${schema}; its groups: ${group}\n`);
    const other = await oncely(['status', '--group', group, '--topic', 'no-such-topic'], env);
    expect(other.stdout).toBe(
      `no stored positions for group ${group}, topic no-such-topic in schema ${schema}; its groups: ${group}\n`,
    );

    const never = freshSchema();
    const unmigrated = await oncely(['status', '--schema', never]);
    expect(unmigrated.code, unmigrated.stderr).toBe(2);
    expect(unmigrated.stderr).toContain(
      `oncely: SCHEMA_TOO_OLD: Schema "${never}" has no oncely tables: no oncely has migrated it`,
    );
    expect(unmigrated.stderr).toContain('check --schema (ONCELY_SCHEMA) and the database in DATABASE_URL');
  });

  it('with the broker unreachable: positions from PostgreSQL, lag and high watermark unknown with a note, exit 0', async () => {
    const { topic, group, env } = await setup(2, 4);
    const run = await oncelyBounded(
      ['run', FAILING, '--until', 'caught-up', '--no-progress'],
      { ...env, APP_FAIL_EVERY: '1000' },
      DEADLINE_MS,
    );
    expect(run.code, run.stderr).toBe(0);

    const closed = `127.0.0.1:${await freePort()}`;
    const text = await oncelyBounded(['status', '--group', group, '--brokers', closed], env, DEADLINE_MS);
    expect(text.hung).toBe(false);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+0\\s+4\\s+unknown\\s+unknown\\s+idle\\s+1\\s+no owner\\s`));
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+1\\s+4\\s+unknown\\s+unknown\\s+idle\\s+1\\s+no owner\\s`));
    expect(text.stdout).toContain('2 partition(s), total lag unknown');
    const notes = text.stdout.split('\n').filter((l) => l.startsWith('Kafka not reached'));
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/high watermark and lag unknown; positions, owners and stops are from PostgreSQL$/);

    const json = await oncelyBounded(['status', '--group', group, '--brokers', closed, '--json'], env, DEADLINE_MS);
    expect(json.code, json.stderr).toBe(0);
    const rows = JSON.parse(json.stdout) as Row[];
    expect(rows.map((r) => [r.partition, r.nextOffset, r.highWatermark, r.lag, r.deadLetters])).toEqual([
      [0, '4', null, null, 1],
      [1, '4', null, null, 1],
    ]);
    expect(json.stderr).toMatch(/Kafka not reached/);
  });

  it('shows a worker killed with SIGKILL as gone once its PostgreSQL session has ended, long before its session timeout', async () => {
    const { group, env } = await setup(2, 3);
    // A session timeout far beyond the test's waits: only the session evidence can make it gone.
    // (The child is SIGKILLed at the test's end if an assertion fails first.)
    const worker = startOncely(
      ['run', V1, '--worker-id', 'w-killed', '--weight', '3', '--heartbeat-interval', '500', '--session-timeout', '600000'],
      env,
    );
    const workers = async () => {
      const r = await oncely(['status', '--group', group, '--workers', '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as WorkerRow[];
    };
    let rows: WorkerRow[] = [];
    const pause = () => new Promise((r) => setTimeout(r, 250));
    await until(async () => {
      if (worker.child.exitCode !== null) throw new Error(`the worker exited: ${(await worker.result).stderr}`);
      rows = await workers();
      if (rows.length === 1 && rows[0]!.live === true && rows[0]!.owned === 2) return true;
      await pause();
      return false;
    }, 'the worker live with both partitions');
    const live = await oncely(['status', '--group', group], env);
    expect(live.stdout).toMatch(/w-killed\s+\S+\s+\d+\s+elastic\s+live\s+\S+ ago\s+2\s+2\s+2/);

    worker.child.kill('SIGKILL');
    expect((await worker.result).signal).toBe('SIGKILL');
    // Polled until it is no longer live; the session timeout (10 min) is far beyond this wait.
    await until(
      async () => {
        rows = await workers();
        if (rows[0]?.live !== true) return true;
        await pause();
        return false;
      },
      'the killed worker no longer live',
      120_000,
    );
    // Gone, not expired: its heartbeat is far younger than its session timeout.
    expect(rows[0]).toMatchObject({
      workerId: 'w-killed',
      state: 'gone',
      live: false,
      weight: 3,
      sessionTimeoutMs: 600_000,
      goneGraceMs: 1000,
    });
    const gone = await oncely(['status', '--group', group], env);
    expect(gone.code, gone.stderr).toBe(0);
    expect(gone.stdout).toMatch(
      /GROUP\s+WORKER\s+HOST\s+PID\s+MEMBERSHIP\s+STATE\s+HEARTBEAT\s+OWNED\s+HELD\s+TARGET\s+WEIGHT\n/,
    );
    // … STATE HEARTBEAT OWNED (its leases may have run out by now) HELD TARGET WEIGHT
    expect(gone.stdout).toMatch(
      /w-killed\s+\S+\s+\d+\s+elastic\s+gone \(session ended, last heartbeat \S+ ago\)\s+\S+ ago\s+\d+\s+2\s+2\s+3\n/,
    );
  });

  it('on a schema migrated only up to 0008: one line naming the missing migration and `oncely migrate`, exit 2', async () => {
    const schema = freshSchema('old');
    const group = randomName('g');
    await migrateUpTo(schema, 8);
    // A worker of the older version, as it registered under 0008.
    await pgPool().query(
      `insert into ${schema}.workers (group_id, worker_id, host, pid, started_at, heartbeat_at, membership, held, weight, session_timeout_ms)
       values ($1, 'w-old', 'pod-1', 7, now(), now(), 'elastic', 0, 1, 15000)`,
      [group],
    );
    const env = { ONCELY_SCHEMA: schema };
    for (const args of [['status'], ['status', '--workers', '--json']]) {
      const r = await oncely(args, env);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toEqual([
        `oncely: SCHEMA_TOO_OLD: Schema "${schema}" is at migration 8, but this version of @oncely/postgres-offsets needs ` +
          'migration 9 (0009_worker_gone_grace.sql). Run `oncely migrate` (or store.migrate()) against it, then try again.',
      ]);
    }
    expect((await oncely(['migrate', '--schema', schema])).code).toBe(0);
    const after = await oncely(['status', '--workers'], env);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toMatch(/w-old\s+pod-1\s+7\s+elastic\s+live\s/);
  });

  it('oncely run --no-migrate on a schema migrated only up to 0008: SCHEMA_TOO_OLD before any record, exit 2', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('nomig');
    const group = randomName('g');
    await migrateUpTo(schema, 8);
    const tables = await makeProjectionTables(schema);
    await producePayments(topic, 1, 5);
    const env = { ONCELY_SCHEMA: schema, APP_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: group };
    const r = await oncely(['run', V1, '--until', 'caught-up', '--no-progress', '--no-migrate', '--log-format', 'json'], env);
    expect(r.code, r.stderr).toBe(2);
    // Once, in the worker's error line.
    const said = stderrText(r.stderr);
    expect(said).toContain(`error worker failed to start SCHEMA_TOO_OLD Schema "${schema}" is at migration 8`);
    expect(said.split('is at migration 8').length - 1, said).toBe(1);
    expect(said).toContain('Run `oncely migrate`');
    expect((await pgPool().query(`select count(*)::int as n from ${tables.records}`)).rows[0].n).toBe(0);
  });
});
