/**
 * The store's side of membership against Postgres: a claim respects a live lease (by the server's
 * clock), a forced takeover is audited in the same statement, heartbeats register workers and tell
 * the live from the dead by now().
 */
import { OncelyError, type WorkerHeartbeat } from '@oncely/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { claimInput, newStore, partitionRow, rejection } from './support.js';

const schema = freshSchema('membership');
const pool = pgPool();
const store = newStore(schema);
const other = newStore(schema);

beforeAll(async () => {
  await store.migrate();
});

const beat = (group: string, workerId: string, extra: Partial<WorkerHeartbeat> = {}): WorkerHeartbeat => ({
  group,
  workerId,
  host: 'host-1',
  pid: 4242,
  membership: 'elastic',
  target: null,
  held: 0,
  maxPartitions: null,
  ...extra,
});

describe('claims respect live leases', () => {
  it('refuses a live holder with its name and lease left; takes a released or expired partition', async () => {
    const input = claimInput({ leaseMs: 1_000 });
    const a = await store.claim(input);
    const held = await rejection(other.claim({ ...input, workerId: 'worker-b' }));
    expect(OncelyError.is(held, 'PARTITION_HELD')).toBe(true);
    expect(held).toMatchObject({ owner: 'worker-a', retriable: true });
    expect((held as unknown as { leaseLeftMs: number }).leaseLeftMs).toBeGreaterThan(0);
    expect((held as Error).message).toMatch(/is held by worker worker-a \(lease left \d\.\d s\)/);
    expect(await partitionRow(pool, schema, a)).toMatchObject({ owner: 'worker-a', epoch: '1' });
    // Expiry is judged by the server's clock: backdate the lease instead of waiting.
    await pool.query(`update ${schema}.partitions set lease_expires_at = now() - interval '1 second' where group_id = $1`, [
      input.group,
    ]);
    const b = await other.claim({ ...input, workerId: 'worker-b' });
    expect(b).toMatchObject({ epoch: 2n, takenFrom: { owner: 'worker-a', leaseLive: false }, suspect: true });
    await other.release(b);
    const c = await store.claim({ ...input, workerId: 'worker-c' });
    expect(c.takenFrom).toBeUndefined();
    expect(c.suspect).toBe(false);
  });

  it('audits a forced takeover from a live holder in admin_audit, and only that', async () => {
    const input = claimInput();
    await store.claim(input);
    const forced = await other.claim({ ...input, workerId: 'worker-b', force: true });
    expect(forced.takenFrom).toEqual({ owner: 'worker-a', leaseLive: true });
    // Forcing a free partition takes nothing from anybody: no audit row.
    await other.claim({ ...input, topic: randomName('free'), workerId: 'worker-b', force: true });
    const { rows } = await pool.query(
      `select actor, action, details from ${schema}.admin_audit where group_id = $1 order by id`,
      [input.group],
    );
    expect(rows).toEqual([
      {
        actor: expect.stringMatching(/.+@.+/),
        action: 'partition.takeover',
        details: { topic: input.topic, partition: 0, from: 'worker-a', to: 'worker-b', epoch: '2', forced: true },
      },
    ]);
  });

  it('lets exactly one of many concurrent claims of a free partition win', async () => {
    const stores = [store, other, newStore(schema), newStore(schema)];
    for (let round = 0; round < 5; round++) {
      const input = claimInput();
      const results = await Promise.allSettled(stores.map((s, i) => s.claim({ ...input, workerId: `w-${i}` })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(OncelyError.is(r.reason, 'PARTITION_HELD')).toBe(true);
      expect(await partitionRow(pool, schema, input)).toMatchObject({ epoch: '1' });
    }
  });
});

describe('heartbeats', () => {
  it('register workers, list the live ones by the server clock, and forget those that leave', async () => {
    const group = randomName('g');
    expect((await store.heartbeat(beat(group, 'w-a', { starting: true }), 10_000)).map((w) => w.workerId)).toEqual(['w-a']);
    const live = await other.heartbeat(beat(group, 'w-b', { starting: true, maxPartitions: 3 }), 10_000);
    expect(live.map((w) => [w.workerId, w.membership, w.maxPartitions]).sort()).toEqual([
      ['w-a', 'elastic', null],
      ['w-b', 'elastic', 3],
    ]);
    expect(live.find((w) => w.workerId === 'w-b')).toMatchObject({ host: 'host-1', pid: 4242, heartbeatAgeMs: 0 });
    // w-a falls silent for longer than the session timeout (backdated by the server clock).
    await pool.query(
      `update ${schema}.workers set heartbeat_at = now() - interval '11 seconds' where group_id = $1 and worker_id = 'w-a'`,
      [group],
    );
    expect(
      (await other.heartbeat(beat(group, 'w-b', { held: 2, target: 2, maxPartitions: 3 }), 10_000)).map((w) => w.workerId),
    ).toEqual(['w-b']);
    const { rows } = await pool.query(
      `select worker_id, membership, target, held, max_partitions from ${schema}.workers where group_id = $1 order by worker_id`,
      [group],
    );
    expect(rows).toEqual([
      { worker_id: 'w-a', membership: 'elastic', target: null, held: 0, max_partitions: null },
      { worker_id: 'w-b', membership: 'elastic', target: 2, held: 2, max_partitions: 3 },
    ]);
    await other.leave(group, 'w-b');
    expect((await store.heartbeat(beat(group, 'w-a'), 10_000)).map((w) => w.workerId)).toEqual(['w-a']);
  });
});

describe('what a heartbeat reads of the partitions', () => {
  it('an elastic heartbeat returns what each live worker owns; a static one reads no owners (its target is its list)', async () => {
    const group = randomName('g');
    const topic = randomName('t');
    await store.heartbeat(beat(group, 'w-a', { starting: true }), 10_000);
    await other.heartbeat(beat(group, 'w-s', { starting: true, membership: 'static' }), 10_000);
    for (const [partition, workerId] of [
      [0, 'w-a'],
      [1, 'w-a'],
      [2, 'w-s'],
    ] as const) {
      await store.claim(claimInput({ group, topic, partition, workerId }));
    }
    const owned = (live: Array<{ workerId: string; owned: unknown }>) => live.map((w) => [w.workerId, w.owned]);
    expect(owned(await store.heartbeat(beat(group, 'w-a'), 10_000))).toEqual([
      [
        'w-a',
        [
          { topic, partition: 0 },
          { topic, partition: 1 },
        ],
      ],
      ['w-s', [{ topic, partition: 2 }]],
    ]);
    expect(owned(await other.heartbeat(beat(group, 'w-s', { membership: 'static' }), 10_000))).toEqual([
      ['w-a', []],
      ['w-s', []],
    ]);
  });
});

describe('a worker whose PostgreSQL sessions ended (a killed process)', () => {
  it('is left out of the live list and loses its live leases after the grace; while unsure the lease holds', async () => {
    const dead = newStore(schema);
    const group = randomName('g');
    const input = claimInput({ group, workerId: 'w-dead', leaseMs: 60_000 });
    const ids = (live: Array<{ workerId: string }>) => live.map((w) => w.workerId).sort();
    const takeover = () => other.claim({ ...input, workerId: 'w-b', goneGraceMs: 0 });
    await dead.heartbeat(beat(group, 'w-dead', { starting: true }), 60_000);
    await dead.claim(input);
    const recorded = await pool.query<{ backend_pid: number }>(
      `select backend_pid from ${schema}.workers where group_id = $1 and worker_id = 'w-dead'`,
      [group],
    );
    const backendPid = recorded.rows[0]!.backend_pid;
    expect(backendPid).toBeGreaterThan(0);
    // Its session lives: live, and its lease holds, even with no grace at all.
    expect(ids(await other.heartbeat(beat(group, 'w-b'), 60_000, { goneGraceMs: 0 }))).toEqual(['w-b', 'w-dead']);
    expect(OncelyError.is(await rejection(takeover()), 'PARTITION_HELD')).toBe(true);

    // The process dies: its connections close and the backends exit.
    await dead.close();
    for (let i = 0; ; i++) {
      const { rowCount } = await pool.query('select 1 from pg_stat_activity where pid = $1', [backendPid]);
      if (rowCount === 0) break;
      if (i > 200) throw new Error(`backend ${backendPid} is still there after its pool closed`);
      await new Promise((r) => setTimeout(r, 25));
    }
    // Within the grace (its last heartbeat is younger than a minute), or without the option: the lease and session count.
    expect(ids(await other.heartbeat(beat(group, 'w-b'), 60_000, { goneGraceMs: 60_000 }))).toEqual(['w-b', 'w-dead']);
    expect(ids(await other.heartbeat(beat(group, 'w-b'), 60_000))).toEqual(['w-b', 'w-dead']);
    expect(
      OncelyError.is(await rejection(other.claim({ ...input, workerId: 'w-b', goneGraceMs: 60_000 })), 'PARTITION_HELD'),
    ).toBe(true);
    expect(OncelyError.is(await rejection(other.claim({ ...input, workerId: 'w-b' })), 'PARTITION_HELD')).toBe(true);
    // A session older than the server (PostgreSQL restarted, which ends every session, the live workers' too): no evidence.
    const shift = (sign: '+' | '-') =>
      pool.query(
        `update ${schema}.workers set backend_start = backend_start ${sign} interval '876000 hours' where group_id = $1 and worker_id = 'w-dead'`,
        [group],
      );
    await shift('-');
    expect(ids(await other.heartbeat(beat(group, 'w-b'), 60_000, { goneGraceMs: 0 }))).toEqual(['w-b', 'w-dead']);
    expect(OncelyError.is(await rejection(takeover()), 'PARTITION_HELD')).toBe(true);
    await shift('+');

    // Gone, past the grace: out of the live list, and its partition is taken with a new epoch.
    expect(ids(await other.heartbeat(beat(group, 'w-b'), 60_000, { goneGraceMs: 0 }))).toEqual(['w-b']);
    const taken = await takeover();
    expect(taken).toMatchObject({ epoch: 2n, suspect: true, takenFrom: { owner: 'w-dead', leaseLive: true, gone: true } });
    expect(await partitionRow(pool, schema, input)).toMatchObject({ owner: 'w-b', epoch: '2' });
  });
});
