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
