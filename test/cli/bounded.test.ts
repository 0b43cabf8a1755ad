/**
 * `oncely run --until caught-up` through the binary: it ends when every partition is caught up or
 * stopped, exits 0 only when all caught up with none stopped, and its summary counts applied and
 * dead-lettered records apart.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTopic, freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { FIXTURES, makeProjectionTables, oncely, oncelyBounded, positions, producePayments, startOncely } from './support.js';

const V1 = resolve(FIXTURES, 'projection-v1.ts');
const FAILING = resolve(FIXTURES, 'failing.ts');
/** A guard against a run that never ends (the defect), not a measure of speed. */
const DEADLINE_MS = 120_000;

async function setup(partitions: number, perPartition: number) {
  const topic = await createTopic(partitions);
  const schema = freshSchema();
  const group = randomName('g');
  const migrated = await oncely(['migrate', '--schema', schema]);
  expect(migrated.code, migrated.stderr).toBe(0);
  const tables = await makeProjectionTables(schema);
  await producePayments(topic, partitions, perPartition);
  return { topic, schema, group, tables, env: { ONCELY_SCHEMA: schema, APP_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: group } };
}

let pool: ReturnType<typeof pgPool> | undefined;
/** One pool for the file: pgPool() opens a new one per call. */
const db = () => {
  pool ??= pgPool();
  return pool;
};
const count = async (table: string) => (await db().query(`select count(*)::int as n from ${table}`)).rows[0].n as number;

describe('oncely run --until caught-up: outcomes and exit codes', () => {
  it('dead-lettered records are counted apart from applied ones in the summary (exit 0: caught up)', async () => {
    const s = await setup(2, 10);
    // seq 0 and 5 of each partition fail: 4 dead letters, 16 applied.
    const r = await oncelyBounded(
      ['run', FAILING, '--until', 'caught-up', '--no-progress'],
      { ...s.env, APP_FAIL_EVERY: '5' },
      DEADLINE_MS,
    );
    expect(r.hung, 'still running at the deadline').toBe(false);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `caught up: 16 applied, 4 dead-lettered (see oncely dlq list), 0 partition(s) stopped; 20 of 20 offset(s) over 2 partition(s) of group ${s.group}\n`,
    );
    expect(await count(s.tables.records)).toBe(16);
    expect(await count(`${s.schema}.dead_letters`)).toBe(4);

    const json = await oncelyBounded(
      ['run', FAILING, '--until', 'caught-up', '--json'],
      { ...s.env, APP_FAIL_EVERY: '5', APP_GROUP: randomName('g2') },
      DEADLINE_MS,
    );
    expect(json.code, json.stderr).toBe(0);
    // A second group over the same records fails on every one (its rows collide with the first's):
    // the case of a run that applied nothing, which the summary must not call applied.
    expect(JSON.parse(json.stdout)).toMatchObject({
      caughtUp: true,
      applied: 0,
      deadLettered: 20,
      stoppedPartitions: 0,
      done: '20',
      total: '20',
    });
  });

  it("a stopped partition ends the run (onExhausted 'stop-partition' used to never end): exit 3, the stop in the summary", async () => {
    const s = await setup(2, 10);
    const r = await oncelyBounded(
      ['run', FAILING, '--until', 'caught-up', '--on-exhausted', 'stop-partition', '--no-progress'],
      { ...s.env, APP_FAIL_EVERY: '5', APP_FAIL_PARTITION: '1' },
      DEADLINE_MS,
    );
    expect(r.hung, 'still running at the deadline').toBe(false);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toBe(
      `not caught up (partitions stopped): 10 applied, 0 dead-lettered, 1 partition(s) stopped (${s.topic}:1 at offset 0: seq 0 fails on purpose); 10 of 20 offset(s) over 2 partition(s) of group ${s.group}\n`,
    );
    // Partition 0 caught up; partition 1 stayed at its failing record.
    expect(await positions(s.schema, s.group)).toEqual({ [`${s.topic}:0`]: '10', [`${s.topic}:1`]: '0' });
  });

  it('SIGTERM before it caught up: a clean drain, exit 4 and "not caught up" (it used to print caught up and exit 0)', async () => {
    const s = await setup(1, 200);
    const run = startOncely(['run', V1, '--until', 'caught-up', '--batch-max-records', '1', '--no-progress'], {
      ...s.env,
      APP_DELAY_MS: '50',
      APP_ANNOUNCE: '1',
    });
    let stderr = '';
    run.child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await until(() => stderr.includes('handling 0/2\n'), 'a few records applied');
    run.child.kill('SIGTERM');
    const r = await run.result;
    expect(r.code, r.stderr).toBe(4);
    const applied = await count(s.tables.records);
    expect(applied).toBeGreaterThan(0);
    expect(applied).toBeLessThan(200);
    expect(r.stdout).toBe(
      `not caught up (stopped by SIGTERM): ${applied} applied, 0 dead-lettered, 0 partition(s) stopped; ${applied} of 200 offset(s) over 1 partition(s) of group ${s.group}\n`,
    );
  });
});
