import { FencedError } from '@oncely/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, pgPool } from '../support/fixtures.js';
import { claimInput, newStore, rejection } from './support.js';

const schema = freshSchema('crash');
const store = newStore(schema);
const pool = pgPool();

beforeAll(async () => {
  await store.migrate();
  await pool.query(`create table ${schema}.notes (id text primary key)`);
});

describe('crash detection and plain transactions', () => {
  it('marks a claim suspect when the previous holder never released, and a commit clears it', async () => {
    const input = claimInput();
    const first = await store.claim(input);
    expect(first.suspect).toBe(false);
    // The holder "dies": no release. The next claim is suspect.
    const second = await store.claim({ ...input, workerId: 'worker-b', force: true });
    expect(second.suspect).toBe(true);
    // A re-claim by the same live worker (after a rewind) keeps the flag as it is.
    const again = await store.claim({ ...input, workerId: 'worker-b', reclaim: true });
    expect(again.suspect).toBe(true);
    await store.runBatch(again, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async () => {});
    await store.release({ ...again, nextOffset: 1n });
    const clean = await store.claim({ ...input, workerId: 'worker-c' });
    expect(clean.suspect).toBe(false);
  });

  it('stores the crash evidence outside transactions, fenced; it survives a release and reads back exactly', async () => {
    const input = claimInput();
    const claim = await store.claim(input);
    await store.recordInFlight(claim, { from: 5n, to: 25n, deaths: 1, alone: 0 });
    await store.recordInFlight(claim, { from: 5n, to: 6n, deaths: 4, alone: 2 });
    // Pending evidence makes the next claim suspect even after a release.
    await store.release(claim);
    const next = await store.claim({ ...input, workerId: 'worker-b', force: true });
    expect(next.suspect).toBe(true);
    expect(next.crash).toEqual({ from: 5n, to: 6n, deaths: 4, alone: 2 });
    expect(await rejection(store.recordInFlight(claim, null))).toBeInstanceOf(FencedError);
    const { rows } = await pool.query(
      `select crash_offset::text, crash_end::text, crash_attempts, crash_alone from ${schema}.partitions
        where group_id = $1 and topic = $2 and partition = $3`,
      [input.group, input.topic, input.partition],
    );
    expect(rows).toEqual([{ crash_offset: '5', crash_end: '6', crash_attempts: 4, crash_alone: 2 }]);
  });

  it('runs a plain transaction that commits or rolls back as a whole', async () => {
    await store.transaction((tx) => tx.insert({ id: 'kept' }).into(`${schema}.notes`));
    const boom = new Error('boom');
    const e = await rejection(
      store.transaction(async (tx) => {
        await tx.insert({ id: 'dropped' }).into(`${schema}.notes`);
        throw boom;
      }),
    );
    expect(e).toBe(boom);
    const { rows } = await pool.query(`select id from ${schema}.notes order by id`);
    expect(rows.map((r) => r.id)).toEqual(['kept']);
    expect(store.isTransientError(Object.assign(new Error('x'), { code: '55P03' }))).toBe(true);
    expect(store.isTransientError(Object.assign(new Error('x'), { code: '23505' }))).toBe(false);
  });
});
