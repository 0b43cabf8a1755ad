/**
 * A process frozen in the middle of a batch (SIGSTOP, a VM pause, a stuck event loop) must not keep
 * its row locks for ever: PostgreSQL ends a batch's transaction left idle longer than
 * idleInTransactionTimeoutMs (nothing of it is committed), and a claim gives up quickly on a row
 * another transaction holds instead of stalling its membership round for the whole lock timeout.
 */
import { OncelyError } from '@oncely/core';
import { describe, expect, it } from 'vitest';
import { cleanup } from '../support/cleanup.js';
import { freshSchema, pgPool } from '../support/fixtures.js';
import { claimInput, logRows, newStore, partitionRow } from './support.js';

const schema = freshSchema('idle');
const pool = pgPool();

describe('a transaction left idle', () => {
  it('is ended by PostgreSQL after idleInTransactionTimeoutMs: the batch rolls back, nothing is committed', async () => {
    const store = newStore(schema, { idleInTransactionTimeoutMs: 300 });
    await store.migrate();
    await pool.query(`create table if not exists ${schema}.writes (n int)`);
    const claim = await store.claim(claimInput({ partition: 7 }));
    const batch = store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
      await tx.raw(`insert into ${schema}.writes values (1)`);
      await new Promise((r) => setTimeout(r, 1500)); // idle in the transaction, as a frozen process is
      await tx.raw('select 1');
    });
    const error = await batch.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, 'the batch must fail').toBeDefined();
    // The lost session is a store failure the runtime retries (the record's tries are not spent).
    expect(store.classifyError(error)).toBe('transient');
    expect((await pool.query(`select count(*)::int as n from ${schema}.writes`)).rows[0].n).toBe(0);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '0' });
    expect(await logRows(pool, schema, claim)).toEqual([]);
    // The store goes on: the next batch commits.
    await store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
      await tx.raw(`insert into ${schema}.writes values (2)`);
    });
    expect((await pool.query(`select n from ${schema}.writes`)).rows).toEqual([{ n: 2 }]);
  });

  it('a claim of a row that another transaction holds gives up quickly, not after the store’s lock timeout', async () => {
    const store = newStore(schema, { lockTimeoutMs: 600_000 });
    await store.migrate();
    const input = claimInput({ partition: 8 });
    await store.claim(input);
    // Another session holds the partition's row, as a worker frozen after its compare-and-set does.
    const holder = await pool.connect();
    cleanup(async () => {
      await holder.query('rollback').catch(() => {});
      holder.release();
    });
    await holder.query('begin');
    await holder.query(`update ${schema}.partitions set updated_at = now() where partition = 8`);
    const guard = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000).unref());
    const outcome = await Promise.race([
      store.claim({ ...input, workerId: 'worker-b', force: true }).then(
        () => 'claimed' as const,
        (e: unknown) => e,
      ),
      guard,
    ]);
    expect(outcome, 'a claim must not wait the store’s 10-minute lock timeout').not.toBe('hung');
    expect(OncelyError.is(outcome, 'STORE_UNAVAILABLE')).toBe(true);
    expect(String((outcome as Error).message)).toMatch(/lock/);
    await holder.query('rollback');
    // Once the row is free the claim succeeds.
    await expect(store.claim({ ...input, workerId: 'worker-b', force: true })).resolves.toMatchObject({ workerId: 'worker-b' });
  });
});
