/**
 * Every flag has an ONCELY_* variable: the variable takes effect when the flag is absent, the flag
 * wins when both are given, and the older KAFKA_BROKERS / DATABASE_URL still work behind
 * ONCELY_BROKERS / ONCELY_DATABASE_URL. Checked through the binary against the real services.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokers, createTopic, databaseUrl, freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { FIXTURES, makeProjectionTables, oncely, positions, producePayments } from './support.js';

const V1 = resolve(FIXTURES, 'projection-v1.ts');
// Nothing answers there: a run that used these would fail.
const NOWHERE = { KAFKA_BROKERS: '127.0.0.1:1', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' };

/** The committed batches of a group: worker and size of each. */
async function batches(schema: string, group: string): Promise<Array<{ worker: string; records: number; partition: number }>> {
  const r = await pgPool().query<{ worker_id: string; record_count: number; partition: number }>(
    `select worker_id, record_count, partition from ${schema}.offset_log where group_id = $1 order by id`,
    [group],
  );
  return r.rows.map((x) => ({ worker: x.worker_id, records: Number(x.record_count), partition: x.partition }));
}

describe('environment variables', () => {
  it('run: ONCELY_* set the app, the endpoints and the tuning; flags win over them', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema();
    const group = randomName('g');
    await makeProjectionTables(schema);
    await producePayments(topic, 2, 30);
    const env = {
      ...NOWHERE,
      ONCELY_BROKERS: brokers().join(','),
      ONCELY_DATABASE_URL: databaseUrl(),
      ONCELY_SCHEMA: schema,
      ONCELY_APP: V1,
      ONCELY_UNTIL: 'caught-up',
      ONCELY_JSON: 'true',
      ONCELY_PROGRESS: 'false',
      ONCELY_BATCH_MAX_RECORDS: '7',
      ONCELY_WORKER_ID: 'worker-from-env',
      ONCELY_WORKER: '2/2',
      APP_SCHEMA: schema,
      APP_TOPIC: topic,
      APP_GROUP: group,
    };

    // Everything from the environment: no argument, no flag.
    const r = await oncely(['run'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ group, caughtUp: true, done: '30', total: '30' });
    expect(r.stderr).not.toMatch(/^progress /m);
    // --worker 2/2 of a two-partition topic is partition 1 alone.
    expect(await positions(schema, group)).toEqual({ [`${topic}:1`]: '30' });
    const first = await batches(schema, group);
    expect(new Set(first.map((b) => b.worker))).toEqual(new Set(['worker-from-env']));
    expect(Math.max(...first.map((b) => b.records))).toBe(7);
    expect(first.reduce((a, b) => a + b.records, 0)).toBe(30);

    // The same variables, and flags that say otherwise: the flags win.
    const f = await oncely(
      ['run', V1, '--worker', '1/2', '--batch-max-records', '4', '--worker-id', 'worker-from-flag', '--until', 'caught-up'],
      env,
    );
    expect(f.code, f.stderr).toBe(0);
    expect(await positions(schema, group)).toEqual({ [`${topic}:0`]: '30', [`${topic}:1`]: '30' });
    const second = (await batches(schema, group)).slice(first.length);
    expect(new Set(second.map((b) => b.worker))).toEqual(new Set(['worker-from-flag']));
    expect(second.every((b) => b.partition === 0)).toBe(true);
    expect(Math.max(...second.map((b) => b.records))).toBe(4);
    expect(second.reduce((a, b) => a + b.records, 0)).toBe(30);

    // A flag beats a variable with a bad value too: the variable is never looked at.
    const bad = await oncely(['run', V1, '--batch-max-records', '4', '--until', 'caught-up'], {
      ...env,
      ONCELY_BATCH_MAX_RECORDS: 'lots',
    });
    expect(bad.code, bad.stderr).toBe(0);

    // KAFKA_BROKERS and DATABASE_URL alone still work.
    const legacy = await oncely(['status', '--group', group, '--json'], {
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      ONCELY_SCHEMA: schema,
    });
    expect(legacy.code, legacy.stderr).toBe(0);
    expect(JSON.parse(legacy.stdout)).toHaveLength(2);
  });

  it('status, offsets, dlq: --group, --json, --topic (space-separated when repeatable), --limit; never a change', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema();
    const group = randomName('g');
    await makeProjectionTables(schema);
    await producePayments(topic, 2, 10);
    const app = { APP_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: group, ONCELY_SCHEMA: schema };
    expect((await oncely(['run', V1, '--until', 'caught-up'], app)).code).toBe(0);

    const json = await oncely(['status'], { ...app, ONCELY_GROUP: group, ONCELY_JSON: '1' });
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as Array<{ group: string }>).map((r) => r.group)).toEqual([group, group]);
    // ONCELY_JSON=0 is false (not "set, hence true").
    const table = await oncely(['status'], { ...app, ONCELY_GROUP: group, ONCELY_JSON: '0' });
    expect(table.stdout).toMatch(/^GROUP\s+TOPIC/);

    const plan = await oncely(['offsets', 'reset', '--to-earliest', '--json'], {
      ...app,
      ONCELY_GROUP: group,
      ONCELY_TOPIC: `${topic}:0 ${topic}:1`,
    });
    expect(plan.code, plan.stderr).toBe(0);
    expect((JSON.parse(plan.stdout) as { entries: unknown[]; executed: boolean }).entries).toHaveLength(2);
    const one = await oncely(['offsets', 'reset', '--to-earliest', '--json', '--topic', `${topic}:1`], {
      ...app,
      ONCELY_GROUP: group,
      ONCELY_TOPIC: `${topic}:0 ${topic}:1`,
    });
    expect((JSON.parse(one.stdout) as { entries: Array<{ partition: number }> }).entries.map((e) => e.partition)).toEqual([1]);

    const history = await oncely(['offsets', 'history'], { ...app, ONCELY_GROUP: group, ONCELY_LIMIT: '1', ONCELY_JSON: 'yes' });
    expect(history.code, history.stderr).toBe(0);
    expect(JSON.parse(history.stdout)).toHaveLength(1);

    const dlq = await oncely(['dlq', 'list'], { ...app, ONCELY_GROUP: group, ONCELY_JSON: 'on' });
    expect(dlq.code, dlq.stderr).toBe(0);
    expect(JSON.parse(dlq.stdout)).toEqual([]);

    // The flags that pick or confirm a change are never read from the environment.
    const before = await positions(schema, group);
    const never = { ...app, ONCELY_GROUP: group, ONCELY_EXECUTE: 'true', ONCELY_TO_EARLIEST: 'true', ONCELY_YES: 'true' };
    const reset = await oncely(['offsets', 'reset', '--to-offset', '3'], never);
    expect(reset.code, reset.stderr).toBe(0); // one target (ONCELY_TO_EARLIEST would make two)…
    expect(reset.stdout).toContain('Dry run: nothing changed'); // …and a plan, not a change
    expect(await positions(schema, group)).toEqual(before);
    const purge = await oncely(['dlq', 'purge'], never);
    expect(purge.code).toBe(2);
    expect(purge.stderr).toMatch(/nothing was deleted\. Add --yes/);
  });
});
