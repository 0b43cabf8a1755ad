/**
 * What `oncely status` shows an operator about membership: the registered workers (live or expired
 * by the database's clock, owned, held, target, weight) and every partition's owner, "no owner" included,
 * also for a partition Kafka has but no worker has claimed yet.
 */
import { PostgresStore } from '@oncely/postgres-offsets';
import { afterAll, describe, expect, it } from 'vitest';
import { oncely } from '../support/cli.js';
import { createTopic, databaseUrl, freshSchema, pgPool, randomName } from '../support/fixtures.js';

/** Waits until PostgreSQL has ended these backends (a closed store's sessions). */
async function backendsGone(pids: number[]): Promise<void> {
  for (let i = 0; ; i++) {
    const { rowCount } = await pgPool().query('select 1 from pg_stat_activity where pid = any($1)', [pids]);
    if (rowCount === 0) return;
    if (i > 200) throw new Error('the closed store’s backends are still there');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('oncely status and membership', () => {
  const schema = freshSchema('status');
  const store = new PostgresStore({ connectionString: databaseUrl(), schema });
  afterAll(() => store.close());

  it('lists workers and every partition with its owner, or "no owner"', async () => {
    await store.migrate();
    const topic = await createTopic(3);
    const group = randomName('g');
    const beat = { group, host: 'pod-1', pid: 7, membership: 'elastic' as const, maxPartitions: null };
    await store.heartbeat({ ...beat, workerId: 'w-live', starting: true, target: 2, held: 1 }, 60_000);
    await store.heartbeat({ ...beat, workerId: 'w-dead', starting: true, target: 1, held: 1 }, 60_000);
    await pgPool().query(
      `update ${schema}.workers set heartbeat_at = now() - interval '2 minutes' where group_id = $1 and worker_id = 'w-dead'`,
      [group],
    );
    const claim = (partition: number, workerId: string) =>
      store.claim({ group, topic, partition, workerId, initialOffset: 0n, leaseMs: 60_000 });
    await claim(0, 'w-live');
    await store.release(await claim(1, 'w-dead'));
    // Partition 2 was never claimed: it has no row, only Kafka knows it.

    const env = { ONCELY_SCHEMA: schema };
    const text = await oncely(['status', '--group', group], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      new RegExp(
        `${group}\\s+w-dead\\s+pod-1\\s+7\\s+elastic\\s+expired \\(last heartbeat 2m\\d\\ds ago, session timeout 1m00s\\)\\s+2m\\d\\ds ago\\s+0\\s+1\\s+1\\s+1\\n`,
      ),
    );
    expect(text.stdout).toMatch(new RegExp(`${group}\\s+w-live\\s+pod-1\\s+7\\s+elastic\\s+live\\s+\\S+ ago\\s+1\\s+1\\s+2`));
    // … LAG STATE DEAD-LETTERS OWNER
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+0\\s+0\\s+0\\s+0\\s+running\\s+0\\s+w-live\\s`));
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+1\\s+0\\s+0\\s+0\\s+idle\\s+0\\s+no owner\\s`));
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+2\\s+-\\s+0\\s+-\\s+idle\\s+0\\s+no owner \\(never claimed\\)`));
    expect(text.stdout).toContain('3 partition(s), total lag 0, 2 without a live owner');

    const json = await oncely(['status', '--group', group, '--json'], env);
    const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((r) => [r.partition, r.nextOffset, r.owner])).toEqual([
      [0, '0', 'w-live'],
      [1, '0', null],
      [2, null, null],
    ]);
    const workers = await oncely(['status', '--group', group, '--workers', '--json'], env);
    expect(
      (JSON.parse(workers.stdout) as Array<Record<string, unknown>>).map((w) => [w.workerId, w.live, w.state, w.owned]),
    ).toEqual([
      ['w-dead', false, 'expired', 0],
      ['w-live', true, 'live', 1],
    ]);
  });

  it('shows a worker whose PostgreSQL session ended as gone, by the rule its peers apply and with its exceptions', async () => {
    await store.migrate();
    const group = randomName('g');
    const beat = { group, host: 'pod-1', pid: 7, membership: 'elastic' as const, maxPartitions: null, target: 0, held: 0 };
    const dying = new PostgresStore({ connectionString: databaseUrl(), schema });
    await dying.heartbeat({ ...beat, workerId: 'w-gone', starting: true }, 60_000, { goneGraceMs: 0 });
    // No grace recorded (a heartbeat without the option): its session ended, but its heartbeat is
    // younger than the fallback grace (two thirds of its session timeout), so it is live.
    await dying.heartbeat({ ...beat, workerId: 'w-nograce', starting: true }, 60_000);
    const pool = pgPool();
    const { rows } = await pool.query<{ backend_pid: number }>(
      `select distinct backend_pid from ${schema}.workers where group_id = $1`,
      [group],
    );
    await dying.close();
    await backendsGone(rows.map((r) => r.backend_pid));
    const env = { ONCELY_SCHEMA: schema };
    const states = async () =>
      (
        JSON.parse((await oncely(['status', '--group', group, '--workers', '--json'], env)).stdout) as Array<
          Record<string, unknown>
        >
      ).map((w) => [w.workerId, w.state, w.live]);
    expect(await states()).toEqual([
      ['w-gone', 'gone', false],
      ['w-nograce', 'live', true],
    ]);
    const text = await oncely(['status', '--group', group, '--workers'], env);
    expect(text.stdout).toMatch(/w-gone\s+pod-1\s+7\s+elastic\s+gone \(session ended, last heartbeat \S+ ago\)\s/);
    // A session older than the server (PostgreSQL restarted, which ends every session): no evidence.
    await pool.query(
      `update ${schema}.workers set backend_start = backend_start - interval '876000 hours' where group_id = $1 and worker_id = 'w-gone'`,
      [group],
    );
    expect(await states()).toEqual([
      ['w-gone', 'live', true],
      ['w-nograce', 'live', true],
    ]);
  });

  it('shows a worker of an older version (no grace recorded) whose session ended as gone after two thirds of its session timeout', async () => {
    await store.migrate();
    const group = randomName('g');
    const beat = { group, host: 'pod-1', pid: 7, membership: 'elastic' as const, maxPartitions: null, target: 0, held: 0 };
    // Heartbeats without goneGraceMs record null, as a worker from before 0009 leaves its row.
    const old = new PostgresStore({ connectionString: databaseUrl(), schema });
    for (const workerId of ['w-killed', 'w-late', 'w-recent']) await old.heartbeat({ ...beat, workerId, starting: true }, 60_000);
    const pool = pgPool();
    const { rows } = await pool.query<{ backend_pid: number; grace: number | null }>(
      `select distinct backend_pid, gone_grace_ms as grace from ${schema}.workers where group_id = $1`,
      [group],
    );
    expect(rows.map((r) => r.grace)).toEqual(rows.map(() => null));
    await old.close();
    await backendsGone(rows.map((r) => r.backend_pid));
    // Killed long ago (past its session timeout); 50 s ago (past 40 s, two thirds of 60 s); 30 s ago.
    for (const [workerId, ago] of [
      ['w-killed', '10 minutes'],
      ['w-late', '50 seconds'],
      ['w-recent', '30 seconds'],
    ]) {
      await pool.query(
        `update ${schema}.workers set heartbeat_at = now() - $3::interval where group_id = $1 and worker_id = $2`,
        [group, workerId, ago],
      );
    }
    const json = JSON.parse(
      (await oncely(['status', '--group', group, '--workers', '--json'], { ONCELY_SCHEMA: schema })).stdout,
    ) as Array<Record<string, unknown>>;
    expect(json.map((w) => [w.workerId, w.state, w.live, w.goneGraceMs])).toEqual([
      ['w-killed', 'gone', false, null],
      ['w-late', 'gone', false, null],
      ['w-recent', 'live', true, null],
    ]);
  });
});
