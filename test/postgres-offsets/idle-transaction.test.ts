/**
 * A process frozen in the middle of a batch (SIGSTOP, a VM pause, a stuck event loop) must not keep
 * its row locks for ever: PostgreSQL ends a batch's transaction left idle longer than
 * idleInTransactionTimeoutMs (nothing of it is committed), and a claim gives up quickly on a row
 * another transaction holds instead of stalling its membership round for the whole lock timeout.
 * A handler that keeps its transaction idle that long itself (slow work that is not the
 * database's inside the batch) is told apart from an outage: retried within the retry budget, then
 * the partition stops loudly, naming the option; never retried for ever as "store unavailable".
 */
import { defineApp, json, OncelyError, type WorkerEventMap } from '@oncely/core';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { captureLogger } from '../failure/support.js';
import { cleanup } from '../support/cleanup.js';
import { createTopic, databaseUrl, freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { realWorker, until } from '../support/oncely.js';
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
    // The session was ended for being idle in the batch: not an outage, the handler's doing.
    expect(OncelyError.is(error, 'IDLE_IN_TRANSACTION'), String(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/idleInTransactionTimeoutMs \(300 ms/);
    expect(store.classifyError(error)).toBe('systemic');
    expect((await pool.query(`select count(*)::int as n from ${schema}.writes`)).rows[0].n).toBe(0);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '0' });
    expect(await logRows(pool, schema, claim)).toEqual([]);
    // The store goes on: the next batch commits.
    await store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
      await tx.raw(`insert into ${schema}.writes values (2)`);
    });
    expect((await pool.query(`select n from ${schema}.writes`)).rows).toEqual([{ n: 2 }]);
  });

  it('fails a batch whose handler never settles once PostgreSQL ends its idle session, instead of holding it for ever', async () => {
    const store = newStore(schema, { idleInTransactionTimeoutMs: 300 });
    await store.migrate();
    await pool.query(`create table if not exists ${schema}.hung (n int)`);
    const claim = await store.claim(claimInput({ partition: 9 }));
    let handlerReturned = false;
    const batch = store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
      await tx.raw(`insert into ${schema}.hung values (1)`);
      await new Promise(() => {}); // an await on something that never answers
      handlerReturned = true;
    });
    const error = await Promise.race([
      batch.then(
        () => 'committed',
        (e: unknown) => e,
      ),
      new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000)),
    ]);
    expect(OncelyError.is(error, 'IDLE_IN_TRANSACTION'), String(error)).toBe(true);
    expect(handlerReturned).toBe(false);
    expect((await pool.query(`select count(*)::int as n from ${schema}.hung`)).rows[0].n).toBe(0);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '0' });
    // The pool gave up the ended session: the next batch commits.
    await store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
      await tx.raw(`insert into ${schema}.hung values (2)`);
    });
    expect((await pool.query(`select n from ${schema}.hung`)).rows).toEqual([{ n: 2 }]);
  });

  it("is reported as ended for idling when the process was not reading its socket: the store's commit meets the end first", async () => {
    // A frozen process (SIGSTOP) that wakes runs its due timers before it reads its sockets: the
    // handler returns and the store sends its commit before it reads PostgreSQL's FATAL 25P03 and
    // the end of the connection, so the error lands on the commit statement, and knex's ROLLBACK
    // then fails with "Connection terminated unexpectedly". A thread blocked in Atomics.wait reads
    // nothing either, which makes that order certain.
    const store = newStore(schema, { idleInTransactionTimeoutMs: 300 });
    await store.migrate();
    await pool.query(`create table if not exists ${schema}.writes (n int)`);
    const claim = await store.claim(claimInput({ partition: 9 }));
    for (const then of ['returns', 'runs a statement'] as const) {
      const error = await store
        .runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
          await tx.raw(`insert into ${schema}.writes values (3)`);
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500); // frozen: no I/O at all
          if (then === 'runs a statement') await tx.raw('select 1');
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error, `the batch must fail (the handler ${then})`).toBeDefined();
      expect(OncelyError.is(error, 'IDLE_IN_TRANSACTION'), `the handler ${then}: ${String(error)}`).toBe(true);
      expect(store.classifyError(error)).toBe('systemic');
    }
    expect((await pool.query(`select count(*)::int as n from ${schema}.writes where n = 3`)).rows[0].n).toBe(0);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '0' });
    expect(await logRows(pool, schema, claim)).toEqual([]);
  });

  it("store.transaction() reports the end for idling too, whichever statement meets it, and not its ROLLBACK's error", async () => {
    // The plain transaction (a dead-letter requeue runs the handler in it) sets the same idle
    // timeout. A process frozen in it wakes and sends its next statement (the handler's, or the
    // store's check that the transaction is still open) before it reads PostgreSQL's 25P03: knex's
    // ROLLBACK then fails with "Connection terminated unexpectedly", which knex rejects with.
    const store = newStore(schema, { idleInTransactionTimeoutMs: 300 });
    await store.migrate();
    await pool.query(`create table if not exists ${schema}.writes (n int)`);
    for (const then of ['returns', 'runs a statement', 'sleeps, then runs a statement'] as const) {
      const error = await store
        .transaction(async (tx) => {
          await tx.raw(`insert into ${schema}.writes values (4)`);
          // Reading its socket while it waits, or frozen (no I/O at all).
          if (then === 'sleeps, then runs a statement') await new Promise((r) => setTimeout(r, 1500));
          else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
          if (then !== 'returns') await tx.raw('select 1');
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error, `the transaction must fail (the work ${then})`).toBeDefined();
      expect(OncelyError.is(error, 'IDLE_IN_TRANSACTION'), `the work ${then}: ${String(error)}`).toBe(true);
      expect(String((error as Error).message)).toMatch(/idleInTransactionTimeoutMs \(300 ms/);
      expect(store.classifyError(error)).toBe('systemic');
    }
    expect((await pool.query(`select count(*)::int as n from ${schema}.writes where n = 4`)).rows[0].n).toBe(0);
    // The store goes on: the next transaction commits.
    await store.transaction(async (tx) => {
      await tx.raw(`insert into ${schema}.writes values (5)`);
    });
    expect((await pool.query(`select count(*)::int as n from ${schema}.writes where n = 5`)).rows[0].n).toBe(1);
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

  it('a handler that keeps its batch idle longer than the timeout is retried within the budget, then stops the partition loudly', {
    timeout: 120_000,
  }, async () => {
    const schema = freshSchema('idle_handler');
    const topic = await createTopic(1);
    const group = `idle-${topic}`;
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: '{"n":0}' }] });
    await producer.disconnect();
    const store = newStore(schema, { idleInTransactionTimeoutMs: 300 });
    await store.migrate();
    await pool.query(`create table ${schema}.applied (n int)`);
    let tries = 0;
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json<{ n: number }>() }, async (m, ctx) => {
      tries++;
      await ctx.tx.raw(`insert into ${schema}.applied values (?)`, [m.value.n]);
      // Slow work that is not the database's (a call to another service), inside the batch.
      await new Promise((r) => setTimeout(r, 1_000));
    });
    const log = captureLogger();
    const w = await realWorker(app, schema, { store, logger: log, retryAttempts: 3, membership: 'static' });
    const stops: Array<WorkerEventMap['partition-stopped']> = [];
    w.on('partition-stopped', (e) => stops.push(e));
    await w.start();
    // Before the fix the lost session was retried as a store outage for ever: this never came.
    await until(() => w.state === 'failed', 'the worker to stop on the idle transaction', 90_000);
    const error = w.error as OncelyError;
    expect(OncelyError.is(error, 'PARTITION_STOPPED'), String(error)).toBe(true);
    expect(OncelyError.is(error.cause, 'IDLE_IN_TRANSACTION'), String(error.cause)).toBe(true);
    expect(error.message).toMatch(/idleInTransactionTimeoutMs/);
    expect(error.message).toMatch(/--idle-in-transaction-timeout/);
    await expect(w.done).rejects.toBe(error);
    // The retry budget: three tries of the batch (of one record), then the stop at the stored position.
    expect(tries).toBe(3);
    expect(stops.map((s) => s.offset)).toEqual([0n]);
    expect(w.progress()[0]?.stopped?.offset).toBe(0n);
    expect(log.lines.filter((l) => l.startsWith('error partition stopped'))).toHaveLength(1);
    expect(log.lines.filter((l) => l.startsWith('warn batch transaction ended: idle'))).toHaveLength(2);
    expect(log.lines.some((l) => /store unavailable/.test(l))).toBe(false);
    // Nothing committed, nothing dead-lettered.
    expect((await pool.query(`select count(*)::int as n from ${schema}.applied`)).rows[0].n).toBe(0);
    expect((await pool.query(`select next_offset::text from ${schema}.partitions where group_id = $1`, [group])).rows).toEqual([
      { next_offset: '0' },
    ]);
    expect((await pool.query(`select count(*)::int as n from ${schema}.dead_letters`)).rows[0].n).toBe(0);
  });
});

describe("a session's statement_timeout not above lockTimeoutMs", () => {
  it("makes a batch's lock wait fail as a lock timeout (an outage, retried), not as the record's slow statement", async () => {
    const url = new URL(databaseUrl());
    url.searchParams.set('options', '-c statement_timeout=1000');
    const logger = captureLogger();
    const store = newStore(schema, { connectionString: url.toString(), lockTimeoutMs: 5000, logger });
    await store.migrate();
    await pool.query(`create table if not exists ${schema}.locked (n int)`);
    const claim = await store.claim(claimInput({ partition: 11 }));
    // Another session holds the handler's table for longer than the statement timeout.
    const holder = await pool.connect();
    try {
      await holder.query('begin');
      await holder.query(`lock table ${schema}.locked in access exclusive mode`);
      const error = await store
        .runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
          await tx.raw(`insert into ${schema}.locked values (1)`);
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(store.classifyError(error), String(error)).toBe('transient');
      // The handler's own statement's error, as it threw it: the lock wait, not the statement timeout (57014).
      expect((error as { code?: string }).code, String(error)).toBe('55P03');
    } finally {
      await holder.query('rollback');
      holder.release();
    }
    expect(logger.lines.filter((l) => l.includes('statement_timeout (1000 ms) is not above'))).toHaveLength(1);
    expect(logger.lines.join('\n')).toContain('"batchLockTimeoutMs":500');
    // Once the lock is gone the batch commits.
    await store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
      await tx.raw(`insert into ${schema}.locked values (2)`);
    });
    expect((await pool.query(`select n from ${schema}.locked`)).rows).toEqual([{ n: 2 }]);
  });
});
