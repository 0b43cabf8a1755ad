/**
 * `--reader` (ONCELY_READER) chooses the Kafka reader adapter of the CLI: the same run through the
 * binary with each adapter applies every record once; an unknown adapter exits 2 before anything opens.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTopic, freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { FIXTURES, makeProjectionTables, oncely, oncelyBounded, producePayments } from './support.js';

const V1 = resolve(FIXTURES, 'projection-v1.ts');
/** A guard against a run that never ends (the defect), not a measure of speed. */
const DEADLINE_MS = 120_000;

describe('oncely --reader', () => {
  it('runs to caught-up with --reader platformatic and with ONCELY_READER=platformatic, each record applied once', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema();
    expect((await oncely(['migrate', '--schema', schema])).code).toBe(0);
    await producePayments(topic, 2, 15);
    const pool = pgPool();
    for (const [i, how] of [
      ['flag', { args: ['--reader', 'platformatic'], env: {} }],
      ['env', { args: [], env: { ONCELY_READER: 'platformatic' } }],
    ] as const) {
      const tables = await makeProjectionTables(schema, `_${i}`);
      const group = randomName('g');
      const r = await oncelyBounded(
        ['run', V1, '--until', 'caught-up', '--no-progress', '--log-level', 'info', ...how.args],
        {
          ONCELY_SCHEMA: schema,
          APP_SCHEMA: schema,
          APP_TOPIC: topic,
          APP_GROUP: group,
          APP_SUFFIX: `_${i}`,
          ...how.env,
        },
        DEADLINE_MS,
      );
      expect(r.hung, 'still running at the deadline').toBe(false);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('30 of 30 offset(s) over 2 partition(s)');
      const rows = await pool.query(
        `select count(*)::int as n, count(distinct (partition, "offset"))::int as d from ${tables.records}`,
      );
      expect(rows.rows[0]).toEqual({ n: 30, d: 30 });
      // The run says which reader it read with.
      expect(r.stderr).toMatch(/kafka reader.*platformatic/);
    }
  });

  it('refuses an unknown adapter with exit 2, naming the choices', async () => {
    const r = await oncely(['status', '--group', 'g', '--reader', 'rdkafka']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/kafkajs, platformatic/);
    const fromEnv = await oncely(['status', '--group', 'g'], { ONCELY_READER: 'rdkafka' });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toMatch(/ONCELY_READER/);
  });
});
