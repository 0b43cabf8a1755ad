/**
 * Every error has a class, and each class has its own answer (real broker and database):
 * systemic errors (a table that does not exist, a binding missing from the container, a stored
 * position past the end of the log, a privilege refused to oncely's crash count) stop loudly with
 * what to do, never dead-letter every record and never loop as "store unavailable"; text oncely
 * writes into PostgreSQL is made safe so a dead letter can always be written; transient errors are
 * retried without spending a record's tries, counted, and logged once per change of state.
 */
import 'reflect-metadata';
import { resolve } from 'node:path';
import { defineApp, json, OncelyError, type WorkerEventMap } from '@oncely/core';
import { DeadLetters, PostgresStore } from '@oncely/postgres-offsets';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { cleanup } from '../support/cleanup.js';
import { oncelyBounded } from '../support/cli.js';
import { createTopic, databaseUrl, freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';
import { captureLogger, FIXTURES } from './support.js';

let pool: ReturnType<typeof pgPool> | undefined;
const db = () => {
  pool ??= pgPool();
  return pool;
};

async function produce(topic: string, values: Array<string | Buffer>): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  await producer.send({ topic, messages: values.map((value) => ({ value })) });
  await producer.disconnect();
}

async function stored(schema: string, group: string): Promise<string | undefined> {
  const { rows } = await db().query<{ next_offset: string }>(
    `select next_offset::text from ${schema}.partitions where group_id = $1`,
    [group],
  );
  return rows[0]?.next_offset;
}

async function deadLetterCount(schema: string): Promise<number> {
  return (await db().query<{ n: number }>(`select count(*)::int as n from ${schema}.dead_letters`)).rows[0]!.n;
}

/** What a worker that stopped loudly shows: failed state, PARTITION_STOPPED, the event, the log. */
async function expectStoppedLoudly(
  w: Awaited<ReturnType<typeof realWorker>>,
  events: Array<WorkerEventMap['partition-stopped']>,
  lines: string[],
  offset: bigint,
): Promise<OncelyError> {
  await until(() => w.state === 'failed', 'the worker to stop on the systemic error', 30_000);
  const error = w.error;
  expect(OncelyError.is(error, 'PARTITION_STOPPED'), String(error)).toBe(true);
  expect(events.map((e) => e.offset)).toEqual([offset]);
  expect(w.progress()[0]?.stopped?.offset).toBe(offset);
  expect(w.progress()[0]?.stopped?.error).toBe(error!.message);
  expect(lines.filter((l) => l.startsWith('error partition stopped: an error no retry fixes'))).toHaveLength(1);
  await expect(w.done).rejects.toBe(error);
  return error as OncelyError;
}

describe('systemic errors stop loudly', () => {
  it('a handler whose table does not exist (42P01) stops the partition and the worker; no record is dead-lettered', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('sys');
    const group = `sys-${topic}`;
    await produce(topic, ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']);
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json() }, async (m, ctx) => {
      // A deploy that ran before its migration: the table is not there.
      await ctx.tx.raw(`insert into ${schema}.orders_not_migrated ("offset") values (?)`, [m.offset.toString()]);
    });
    const log = captureLogger();
    const w = await realWorker(app, schema, { logger: log, retryAttempts: 2 });
    const events: Array<WorkerEventMap['partition-stopped']> = [];
    w.on('partition-stopped', (e) => events.push(e));
    await w.start();
    const error = await expectStoppedLoudly(w, events, log.lines, 0n);
    expect(error.message).toMatch(/42P01/);
    expect(error.message).toMatch(/orders_not_migrated/);
    expect(error.message).toMatch(/run the migration that creates it/);
    expect(await deadLetterCount(schema)).toBe(0);
    expect(await stored(schema, group)).toBe('0');
  });

  it('a class handler whose dependency is not bound fails worker.start() naming the class and the binding', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('bind');
    await produce(topic, ['{"n":0}']);
    process.env.APP_TOPIC = topic;
    const { default: app } = (await import('./fixtures/unbound-app.js')) as { default: ReturnType<typeof defineApp> };
    delete process.env.APP_TOPIC;
    const w = await realWorker(app as never, schema);
    const error = await w.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(OncelyError.is(error, 'CONFIG_INVALID'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/Handler class OrderHandler of topic '.*' cannot be resolved/);
    expect((error as Error).message).toMatch(/orders\.repository/);
    expect(w.state).toBe('failed');
    expect(await stored(schema, 'unbound')).toBeUndefined();
  });

  it('`oncely run` with an unbound dependency exits 2 before reading, naming the class and the binding', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('bindcli');
    await produce(topic, ['{"n":0}']);
    const run = await oncelyBounded(
      ['run', resolve(FIXTURES, 'unbound-app.ts'), '--until', 'caught-up', '--no-progress'],
      { ONCELY_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: `bindcli-${topic}` },
      60_000,
    );
    expect(run.hung, run.stderr).toBe(false);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/OrderHandler/);
    expect(run.stderr).toMatch(/orders\.repository/);
  });

  it("`oncely run` whose handler's table does not exist exits 1 with the message, nothing dead-lettered", async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('tblcli');
    const group = `tblcli-${topic}`;
    await produce(topic, ['{"n":0}', '{"n":1}', '{"n":2}']);
    const run = await oncelyBounded(
      ['run', resolve(FIXTURES, 'table-app.ts'), '--until', 'caught-up', '--no-progress', '--retry-attempts', '2'],
      { ONCELY_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: group, APP_TABLE: `${schema}.not_there` },
      60_000,
    );
    expect(run.hung, run.stderr).toBe(false);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(1);
    expect(run.stdout).not.toMatch(/caught up/);
    expect(`${run.stdout}${run.stderr}`).toMatch(/stopped at offset 0.*42P01/);
    expect(await deadLetterCount(schema)).toBe(0);
    expect(await stored(schema, group)).toBe('0');
  });

  it('`oncely run --until caught-up` with progress ends its output with the failure and what to do, no progress line after it', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('tblprog');
    const group = `tblprog-${topic}`;
    await produce(topic, ['{"n":0}', '{"n":1}', '{"n":2}']);
    const run = await oncelyBounded(
      // A short interval: a progress line would have many chances to follow the failure.
      ['run', resolve(FIXTURES, 'table-app.ts'), '--until', 'caught-up', '--progress-interval', '50', '--retry-attempts', '2'],
      // The first record sleeps a second before its insert fails: progress is drawn meanwhile.
      {
        ONCELY_SCHEMA: schema,
        APP_TOPIC: topic,
        APP_GROUP: group,
        APP_TABLE: `${schema}.not_there`,
        APP_SLEEP_OFFSET: '0',
        APP_SLEEP_S: '1',
      },
      60_000,
    );
    expect(run.hung, run.stderr).toBe(false);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(1);
    const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
    // Progress was shown while the run went on, so the test sees where it stops.
    expect(
      lines.some((l) => l.startsWith('progress ')),
      run.stderr,
    ).toBe(true);
    const stoppedAt = lines.findIndex((l) => l.includes('partition stopped: an error no retry fixes'));
    expect(stoppedAt, run.stderr).toBeGreaterThanOrEqual(0);
    expect(
      lines.slice(stoppedAt).filter((l) => l.startsWith('progress ')),
      run.stderr,
    ).toEqual([]);
    const last = lines.at(-1)!;
    expect(last, run.stderr).toMatch(/worker failed/);
    expect(last).toMatch(/42P01/);
    expect(last).toMatch(/offset 0/);
  });

  it('`oncely run` says a systemic failure once: the error line with what to do, then lines that refer to it; exit code unchanged', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('once');
    const table = `${schema}.not_there`;
    await produce(topic, ['{"n":0}', '{"n":1}']);
    const app = resolve(FIXTURES, 'table-app.ts');
    const env = { ONCELY_SCHEMA: schema, APP_TOPIC: topic, APP_TABLE: table };
    /** How often the output says the failure itself: its cause (the statement) and its remedy. */
    const said = (r: { stdout: string; stderr: string }) => ({
      cause: `${r.stdout}${r.stderr}`.split(`42P01: insert into ${table} `).length - 1,
      todo: `${r.stdout}${r.stderr}`.split('To do:').length - 1,
    });
    // A bounded run (the worker fails while its bounded stop is under way), and a run until a signal.
    for (const until of [['--until', 'caught-up'], []]) {
      const run = await oncelyBounded(
        ['run', app, ...until, '--no-progress', '--retry-attempts', '2'],
        { ...env, APP_GROUP: `once-${until.length}-${topic}` },
        60_000,
      );
      const output = `${run.stdout}\n${run.stderr}`;
      expect(run.hung, output).toBe(false);
      expect(run.code, output).toBe(1);
      expect(said(run), output).toEqual({ cause: 1, todo: 1 });
      const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
      // The line operators alert on, in full.
      const stopped = lines.filter((l) => l.includes('partition stopped: an error no retry fixes'));
      expect(stopped, output).toHaveLength(1);
      expect(stopped[0]).toContain(table);
      expect(stopped[0]).toMatch(/To do: a table, column or schema does not exist: run the migration/);
      // The last line is the worker's failure: which partition, where, why in one code, and where the rest is.
      const last = lines.at(-1)!;
      expect(last, output).toMatch(/^\S+ ERROR worker failed/);
      expect(last).toMatch(new RegExp(`Partition ${topic}/0 stopped at offset 0 \\(42P01\\)`));
      expect(last).toMatch(/partition stopped.* above says why and what to do/);
      expect(last).toMatch(/code=PARTITION_STOPPED/);
      expect(
        lines.filter((l) => /ERROR worker failed/.test(l)),
        output,
      ).toHaveLength(1);
    }
    // A worker that cannot start (a binding missing): said once, by the worker, and exit 2 as before.
    const unbound = await oncelyBounded(
      ['run', resolve(FIXTURES, 'unbound-app.ts'), '--until', 'caught-up', '--no-progress'],
      { ONCELY_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: `once-unbound-${topic}` },
      60_000,
    );
    expect(unbound.hung, unbound.stderr).toBe(false);
    expect(unbound.code, unbound.stderr).toBe(2);
    expect(unbound.stderr.split('Bind what it injects').length - 1, unbound.stderr).toBe(1);
    expect(unbound.stderr).toMatch(/ERROR worker failed to start .*OrderHandler.*code=CONFIG_INVALID/);
  });

  it('a stored position past the end of the log stops loudly (not retried as "store unavailable") and is left as it is', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('past');
    const group = `past-${topic}`;
    await produce(topic, ['{"n":0}', '{"n":1}', '{"n":2}']);
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json() }, async () => {});
    const first = await realWorker(app, schema);
    await first.start();
    await until(() => first.progress()[0]?.nextOffset === 3n, 'the records applied');
    await first.stop();
    // The topic deleted and created again (or its log truncated): the position is past the end.
    await db().query(`update ${schema}.partitions set next_offset = 100, max_committed_offset = 100 where group_id = $1`, [
      group,
    ]);
    const log = captureLogger();
    const w = await realWorker(app, schema, { logger: log, offsetOutOfRange: 'earliest' });
    const events: Array<WorkerEventMap['partition-stopped']> = [];
    w.on('partition-stopped', (e) => events.push(e));
    await w.start();
    const error = await expectStoppedLoudly(w, events, log.lines, 100n);
    expect(error.message).toMatch(/past the end of the log \(high watermark 3\)/);
    expect(error.message).toMatch(/oncely offsets reset --group .* --to-earliest/);
    expect(log.lines.some((l) => /could not commit/.test(l))).toBe(false);
    expect(await stored(schema, group)).toBe('100');
  });

  it('a non-transient error while counting a crash attempt stops loudly instead of a silent stall', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('crashcount');
    const group = `cc-${topic}`;
    await produce(topic, ['{"n":0}', '{"n":1}']);
    const applied: bigint[] = [];
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json() }, async (m) => {
      applied.push(m.offset);
    });
    const first = await realWorker(app, schema);
    await first.start();
    await until(() => first.progress()[0]?.nextOffset === 2n, 'the records applied');
    await first.stop();
    // The holder died (never released) and the crash count is refused (a privilege taken away).
    await db().query(
      `update ${schema}.partitions set owner = 'dead-worker', lease_expires_at = now() - interval '1 second' where group_id = $1`,
      [group],
    );
    await db().query(`create function ${schema}.no_crash_count() returns trigger language plpgsql as $$
      begin raise exception 'permission denied to count attempts' using errcode = 'insufficient_privilege'; end $$`);
    await db().query(`create trigger no_crash_count before update on ${schema}.partitions for each row
      when (new.crash_attempts > old.crash_attempts) execute function ${schema}.no_crash_count()`);
    await produce(topic, ['{"n":2}']);
    applied.length = 0;
    const log = captureLogger();
    const w = await realWorker(app, schema, { logger: log });
    const events: Array<WorkerEventMap['partition-stopped']> = [];
    w.on('partition-stopped', (e) => events.push(e));
    await w.start();
    const error = await expectStoppedLoudly(w, events, log.lines, 2n);
    expect(error.message).toMatch(/at offset 2 \(crash detection\)/);
    expect(error.message).toMatch(/42501/);
    expect(error.message).toMatch(/grant it/);
    expect(applied).toEqual([]);
    expect(await stored(schema, group)).toBe('2');
  });
});

describe('systemic errors outside a batch stop as loudly', () => {
  it("a replay whose applied ranges cannot be read (oncely's table gone: 42P01) stops the partition with what to do", async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('ranges');
    const group = `ranges-${topic}`;
    await produce(topic, ['{"n":0}', '{"n":1}', '{"n":2}']);
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json() }, async () => {});
    const first = await realWorker(app, schema);
    await first.start();
    await until(() => first.progress()[0]?.nextOffset === 3n, 'the records applied');
    await first.stop();
    // A rewind (below the highest commit: a replay), and oncely's offset log is gone.
    await db().query(`update ${schema}.partitions set next_offset = 0 where group_id = $1`, [group]);
    await db().query(`alter table ${schema}.offset_log rename to offset_log_gone`);
    const log = captureLogger();
    const w = await realWorker(app, schema, { logger: log });
    const events: Array<WorkerEventMap['partition-stopped']> = [];
    w.on('partition-stopped', (e) => events.push(e));
    await w.start();
    const error = await expectStoppedLoudly(w, events, log.lines, 0n);
    expect(error.message).toMatch(/42P01/);
    expect(error.message).toMatch(/oncely migrate/);
    expect(await stored(schema, group)).toBe('0');
  });
});

describe('systemic errors of the membership rounds', () => {
  it("a privilege on oncely's tables taken away mid-run (42501 on the heartbeat) stops the worker with what to do, not a warning retried for ever", async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('round');
    const group = `round-${topic}`;
    await produce(topic, ['{"n":0}', '{"n":1}']);
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json() }, async () => {});
    const log = captureLogger();
    const w = await realWorker(app, schema, { logger: log, heartbeatIntervalMs: 200 });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 2n, 'the records applied');
    // REVOKE UPDATE ON <schema>.workers from the worker's user (it is the tables' owner here).
    await db().query(`create function ${schema}.no_heartbeat() returns trigger language plpgsql as $$
      begin raise exception 'permission denied for table workers' using errcode = 'insufficient_privilege'; end $$`);
    await db().query(
      `create trigger no_heartbeat before update on ${schema}.workers for each row execute function ${schema}.no_heartbeat()`,
    );
    await until(() => w.state === 'failed', 'the worker to stop on the refused heartbeat', 30_000);
    const error = w.error;
    expect(OncelyError.is(error, 'STORE_FAILED'), String(error)).toBe(true);
    expect(error!.message).toMatch(/membership round .* failed with an error no retry fixes/);
    expect(error!.message).toMatch(/42501/);
    expect(error!.message).toMatch(/grant it/);
    await expect(w.done).rejects.toBe(error);
    expect(log.lines.filter((l) => l.startsWith('error membership round failed: an error no retry fixes'))).toHaveLength(1);
    // Said once, with what to do: the worker's failure line refers to it instead of repeating it.
    expect(log.lines.filter((l) => l.includes('grant it'))).toHaveLength(1);
    expect(log.lines.filter((l) => l.includes('permission denied for table workers'))).toHaveLength(1);
    expect(log.lines.filter((l) => l.startsWith('error worker failed') && l.includes('logged above'))).toHaveLength(1);
    expect(log.lines.some((l) => l.startsWith('warn membership round failed; leases are renewed again'))).toBe(false);
    expect(await stored(schema, group)).toBe('2');
  });
});

describe('text oncely writes into PostgreSQL', () => {
  it('an error message with a lone surrogate and a NUL is dead-lettered with the raw bytes, and the partition moves on', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('surr');
    const group = `surr-${topic}`;
    const raw = Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x31, 0x7d, 0x00, 0xff]); // {"n":1} NUL 0xff
    await produce(topic, ['{"n":0}', raw, '{"n":2}']);
    const applied: bigint[] = [];
    const app = defineApp<Knex.Transaction>({ group }).handle(
      { topic, codec: { name: 'bytes', decode: (b) => b }, retry: { attempts: 1 } },
      async (m) => {
        if (m.offset === 1n) {
          const e = new Error('bad name \uD800 and \u0000 here');
          e.name = 'Bad\uDC00Name';
          throw e;
        }
        applied.push(m.offset);
      },
    );
    const w = await realWorker(app, schema);
    const dead: bigint[] = [];
    w.on('dead-letter', (d) => dead.push(d.offset));
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 3n, 'the partition past the record', 30_000);
    const committed = w.progress()[0]!.committedRecords;
    await w.stop();
    // Offset 0 ran twice (the first try of the batch rolled back at offset 1), committed once.
    expect(committed).toBe(2);
    expect(applied.at(-1)).toBe(2n);
    expect(dead).toEqual([1n]);
    const { rows } = await db().query<{ value: Buffer; error_message: string; error_name: string; error_stack: string }>(
      `select value, error_message, error_name, error_stack from ${schema}.dead_letters`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.value.equals(raw)).toBe(true);
    expect(rows[0]!.error_message).toBe('bad name \uFFFD and \uFFFD here');
    expect(rows[0]!.error_name).toBe('Bad\uFFFDName');
    expect(rows[0]!.error_stack).toContain('bad name \uFFFD and \uFFFD here');

    // A requeue that fails the same way records the error and its audit row (jsonb) too.
    const store = await pgStore(schema);
    const [outcome] = await new DeadLetters({ store }).requeue(app, { group });
    expect(outcome?.status).toBe('failed');
    const after = await db().query<{ attempts: number; error_message: string }>(
      `select attempts, error_message from ${schema}.dead_letters`,
    );
    expect(after.rows).toEqual([{ attempts: 2, error_message: 'bad name \uFFFD and \uFFFD here' }]);
    const audit = await db().query<{ details: { result: string; error: { message: string } } }>(
      `select details from ${schema}.admin_audit where action = 'dlq.requeue'`,
    );
    expect(audit.rows.map((r) => [r.details.result, r.details.error.message])).toEqual([
      ['failed', 'bad name \uFFFD and \uFFFD here'],
    ]);
  });
});

describe('transient errors', () => {
  it("a lock timeout in a handler's own SQL is retried without spending the record's tries, counted, and logged once per change", async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('lock');
    const group = `lock-${topic}`;
    await db().query(`create schema if not exists ${schema}_app`);
    cleanup(() => db().query(`drop schema if exists ${schema}_app cascade`));
    await db().query(`create table ${schema}_app.counter (id int primary key, n int not null)`);
    await db().query(`insert into ${schema}_app.counter values (1, 0)`);
    const store = new PostgresStore({ connectionString: databaseUrl(), schema, poolMax: 6, lockTimeoutMs: 100 });
    cleanup(() => store.close());
    await store.migrate();
    const app = defineApp<Knex.Transaction>({ group }).handle(
      { topic, codec: json(), retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 20 } },
      async (_m, ctx) => {
        await ctx.tx.raw(`update ${schema}_app.counter set n = n + 1 where id = 1`);
      },
    );
    // Another transaction holds the row: every try of the handler's update times out on the lock.
    const holder = await db().connect();
    await holder.query('begin');
    await holder.query(`select * from ${schema}_app.counter where id = 1 for update`);
    const log = captureLogger();
    const w = await realWorker(app, schema, { store, logger: log, retryInitialDelayMs: 20, retryMaxDelayMs: 100 });
    const dead: bigint[] = [];
    w.on('dead-letter', (d) => dead.push(d.offset));
    await produce(topic, ['{"n":0}']);
    await w.start();
    try {
      await until(() => (w.progress()[0]?.transientErrors ?? 0) >= 8, 'several lock timeouts retried', 30_000);
    } finally {
      await holder.query('rollback');
      holder.release();
    }
    await until(() => w.progress()[0]?.nextOffset === 1n, 'the record applied once the lock is free');
    const transients = w.progress()[0]!.transientErrors;
    await w.stop();
    expect(dead).toEqual([]);
    expect((await db().query(`select n from ${schema}_app.counter`)).rows[0].n).toBe(1);
    // Far more failures than log lines: one when it started failing, one when it recovered.
    const failing = log.lines.filter((l) => /could not commit/.test(l));
    expect(transients).toBeGreaterThanOrEqual(8);
    expect(failing).toHaveLength(1);
    expect(failing[0]).toMatch(/^warn .*"attempt":1,.*"code":"[^"]*55P03"/);
    expect(log.lines.filter((l) => /^info recovered/.test(l))).toHaveLength(1);
  });
});
