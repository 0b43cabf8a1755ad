/**
 * The CLI's log lines: JSON (one event per line, with the worker's id and group) when asked and,
 * by default, whenever stderr is not a terminal; logfmt when asked; a sentinel password in the
 * database URL appears nowhere in the output.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTopic, databaseUrl, freshSchema, randomName } from '../support/fixtures.js';
import { FIXTURES, makeProjectionTables, oncely, producePayments } from './support.js';

const V1 = resolve(FIXTURES, 'projection-v1.ts');
const SENTINEL = 'Sentinel-Pw-4711';

async function setup() {
  const topic = await createTopic(2);
  const schema = freshSchema('logs');
  const group = randomName('logs');
  expect((await oncely(['migrate', '--schema', schema])).code).toBe(0);
  await makeProjectionTables(schema);
  await producePayments(topic, 2, 20);
  // Trust authentication ignores the password: the run works, and must never print it.
  const url = new URL(databaseUrl());
  url.password = SENTINEL;
  return {
    group,
    env: { ONCELY_SCHEMA: schema, APP_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: group, DATABASE_URL: url.toString() },
  };
}

describe('oncely run log lines', () => {
  it('json and auto (stderr is a pipe) write one JSON event per line with the worker id and group; logfmt does not', async () => {
    const s = await setup();
    for (const format of ['json', 'auto']) {
      const r = await oncely(['run', V1, '--until', 'caught-up', '--no-progress', '--log-level', 'info'], {
        ...s.env,
        ONCELY_LOG_FORMAT: format,
        APP_GROUP: `${s.group}-${format}`,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(`${r.stdout}${r.stderr}`).not.toContain(SENTINEL);
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('(node:') && !l.startsWith('(Use `node'));
      expect(lines.length).toBeGreaterThan(2);
      const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const e of events) {
        expect(typeof e.msg).toBe('string');
        expect(['debug', 'info', 'warn', 'error']).toContain(e.level);
        expect(Number.isNaN(Date.parse(String(e.time)))).toBe(false);
      }
      const stopped = events.find((e) => e.msg === 'worker stopped');
      expect(stopped, r.stderr).toBeDefined();
      const fromWorker = events.filter((e) => typeof e.worker === 'string');
      expect(fromWorker.length).toBeGreaterThan(0);
      for (const e of fromWorker) expect(e.group).toBe(`${s.group}-${format}`);
    }
    const logfmt = await oncely(['run', V1, '--until', 'caught-up', '--no-progress', '--log-level', 'info'], {
      ...s.env,
      ONCELY_LOG_FORMAT: 'logfmt',
      APP_GROUP: `${s.group}-logfmt`,
    });
    expect(logfmt.code, logfmt.stderr).toBe(0);
    expect(logfmt.stderr).toMatch(/^\d{4}-\d\d-\d\dT\S+ INFO {2}worker stopped/m);
    expect(logfmt.stderr).not.toMatch(/^\{"/m);
    expect(`${logfmt.stdout}${logfmt.stderr}`).not.toContain(SENTINEL);

    const bad = await oncely(['run', V1, '--log-format', 'xml'], s.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--log-format/);
  });
});
