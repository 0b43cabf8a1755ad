/**
 * The crash budget against the real broker and database, with worker processes restarted in a loop
 * as a supervisor would: a record whose handler ends the process stops its partition by default
 * (or is dead-lettered when onCrashLoop says so) once it was alone in flight at crashBudget deaths
 * in a row; a slow record that external SIGKILLs hit again and again is not blamed for them.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokers, createTopic, databaseUrl, freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { pgStore, until } from '../support/oncely.js';
import { type CliResult, collect, FIXTURES, spawnTs } from './support.js';

let pool: ReturnType<typeof pgPool> | undefined;
const db = () => {
  pool ??= pgPool();
  return pool;
};

/** A crash worker process and its output so far. */
function start(env: Record<string, string>): { child: ChildProcess; out: () => string; done: Promise<CliResult> } {
  const child = spawnTs(resolve(FIXTURES, 'crash-worker.ts'), env);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { child, out: () => out, done: collect(child) };
}

async function setup(partitions: number, perPartition: number) {
  const topic = await createTopic(partitions);
  const schema = freshSchema('crash');
  const appSchema = freshSchema('crashapp');
  const table = `${appSchema}.seen`;
  await pgStore(schema); // migrated before the first worker starts
  await db().query(`create schema ${appSchema}`);
  await db().query(`create table ${table} (id text not null, partition int not null, "offset" bigint not null)`);
  const producer = kafkaClient().producer();
  await producer.connect();
  for (let partition = 0; partition < partitions; partition++)
    await producer.send({
      topic,
      messages: Array.from({ length: perPartition }, (_, i) => ({
        partition,
        value: JSON.stringify({ id: `p${partition}-${i}` }),
      })),
    });
  await producer.disconnect();
  const group = `crash-${topic}`;
  const env = {
    KAFKA_BROKERS: brokers().join(','),
    DATABASE_URL: databaseUrl(),
    CRASH_SCHEMA: schema,
    CRASH_TABLE: table,
    CRASH_TOPIC: topic,
    CRASH_GROUP: group,
  };
  const positions = async () =>
    (
      await db().query<{ partition: number; next_offset: string }>(
        `select partition, next_offset::text from ${schema}.partitions where group_id = $1 order by partition`,
        [group],
      )
    ).rows.map((r) => Number(r.next_offset));
  const seen = async () =>
    (await db().query<{ id: string; n: number }>(`select id, count(*)::int as n from ${table} group by id order by id`)).rows;
  const deadLetters = () =>
    db().query(`select topic, partition, "offset", error_name, error_code, error_message, value from ${schema}.dead_letters`);
  return { topic, schema, env, positions, seen, deadLetters };
}

const ids = (partition: number, n: number, except?: string) =>
  Array.from({ length: n }, (_, i) => `p${partition}-${i}`).filter((id) => id !== except);

describe('crash budget (a handler that calls process.exit on one record)', () => {
  it('stops the partition by default, with the evidence in the log; nothing is dead-lettered, the other partition is applied', async () => {
    const perPartition = 30;
    const { env, positions, seen, deadLetters } = await setup(2, perPartition);
    let exits = 0;
    let stderr = '';
    let last: ReturnType<typeof start> | undefined;
    // The supervisor loop: restart the worker whenever it exits, until partition 0 reports its stop.
    for (;;) {
      const w = start({ ...env, CRASH_ON: 'p0-12' });
      const stopped = until(() => /^stopped 0 /m.test(w.out()), 'partition 0 stopped', 90_000).then(() => 'stopped' as const);
      const r = await Promise.race([w.done, stopped]);
      if (r === 'stopped') {
        last = w;
        break;
      }
      stderr += r.stderr;
      expect(r.code, r.stderr).toBe(1);
      exits++;
      // Two deaths with the first batch in flight, at most four halvings of 10 records, then crashBudget (5) alone.
      expect(exits).toBeLessThanOrEqual(2 + 4 + 5);
    }
    // The partition stopped on record 12, with its code; the worker lives on and applies partition 1.
    expect(last!.out()).toMatch(/^stopped 0 12 CRASH_LOOP$/m);
    await until(async () => (await positions())[1] === perPartition, 'partition 1 applied');
    expect(last!.child.exitCode).toBeNull();
    last!.child.kill('SIGTERM');
    const final = await last!.done;
    stderr += final.stderr;
    // Five deaths alone are the evidence: at least that many restarts, each one counted.
    expect(exits).toBeGreaterThanOrEqual(5 + 1);
    expect(stderr).toMatch(/record kills the worker process; partition stopped/);
    expect(stderr).toMatch(/code=CRASH_LOOP/);
    expect(stderr).toMatch(/died 5 times in a row while record \S+\/0\/12 was applied alone \(crashBudget 5/);
    expect(stderr).toMatch(/restart the worker with a higher crashBudget/);

    expect((await deadLetters()).rows).toEqual([]);
    expect(await positions()).toEqual([12, perPartition]);
    const rows = await seen();
    expect(rows.map((r) => r.id).sort()).toEqual([...ids(0, 12), ...ids(1, perPartition)].sort());
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
  });

  it("dead-letters the record with onCrashLoop: 'dead-letter'; every other record is applied once", async () => {
    const perPartition = 30;
    const crashBudget = 2;
    const { topic, env, positions, seen, deadLetters } = await setup(2, perPartition);
    let exits = 0;
    let output = '';
    for (;;) {
      const w = start({ ...env, CRASH_ON: 'p0-12', CRASH_POLICY: 'dead-letter', CRASH_BUDGET: String(crashBudget) });
      const finished = until(
        async () => (await positions()).join() === `${perPartition},${perPartition}`,
        'both partitions applied',
        90_000,
      ).then(() => 'caught-up' as const);
      const r = await Promise.race([w.done, finished]);
      if (r === 'caught-up') {
        w.child.kill('SIGTERM');
        output += (await w.done).stdout;
        break;
      }
      output += r.stdout;
      expect(r.code, r.stderr).toBe(1);
      exits++;
      expect(exits).toBeLessThanOrEqual(2 + 4 + crashBudget);
    }
    expect(exits).toBeGreaterThanOrEqual(crashBudget + 1);
    expect(output).toContain('dead-letter 12 crash WorkerCrashedError');

    const dl = await deadLetters();
    expect(dl.rows).toHaveLength(1);
    expect(dl.rows[0]).toMatchObject({
      topic,
      partition: 0,
      offset: '12',
      error_name: 'WorkerCrashedError',
      error_code: 'CRASH_LOOP',
    });
    expect(dl.rows[0].error_message).toContain(`crashBudget ${crashBudget}`);
    expect(dl.rows[0].value).toEqual(Buffer.from(JSON.stringify({ id: 'p0-12' })));

    const rows = await seen();
    expect(rows.map((r) => r.id).sort()).toEqual([...ids(0, perPartition, 'p0-12'), ...ids(1, perPartition)].sort());
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
  });
});

describe('crash budget (external SIGKILLs, not the record)', () => {
  it('a slow record SIGKILLed in flight more often than the old budget (5) is applied once after the kills stop, not dead-lettered', async () => {
    const { env, positions, seen, deadLetters } = await setup(1, 3);
    const kills = 7;
    for (let k = 0; k < kills; k++) {
      const w = start({ ...env, CRASH_SLOW_MS: '3000' });
      // Offset 0 is in flight (its handler sleeps 3 s): kill the process from outside, as the OOM killer would.
      await until(() => /^handling p0-0$/m.test(w.out()), 'offset 0 in flight', 60_000);
      w.child.kill('SIGKILL');
      const r = await w.done;
      expect(r.signal).toBe('SIGKILL');
      expect(await positions()).toEqual([0]);
    }
    // The kills stop: the next process applies everything.
    const w = start({ ...env, CRASH_SLOW_MS: '3000' });
    await until(async () => (await positions())[0] === 3, 'the partition applied', 90_000);
    w.child.kill('SIGTERM');
    await w.done;
    expect(w.out()).not.toMatch(/^(stopped|dead-letter) /m);
    expect((await deadLetters()).rows).toEqual([]);
    expect(await seen()).toEqual([
      { id: 'p0-0', n: 1 },
      { id: 'p0-1', n: 1 },
      { id: 'p0-2', n: 1 },
    ]);
  });
});
