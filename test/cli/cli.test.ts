import { createServer, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTopic, databaseUrl, freshSchema, kafkaClient, pgPool, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import {
  FIXTURES,
  gap,
  makeProjectionTables,
  oncely,
  oncelyBounded,
  oncelyJson,
  positions,
  producePayments,
  snapshot,
  startOncely,
  stderrText,
} from './support.js';

const V1 = resolve(FIXTURES, 'projection-v1.ts');
const V2 = resolve(FIXTURES, 'projection-v2.ts');

interface Setup {
  topic: string;
  schema: string;
  group: string;
  env: Record<string, string>;
  tables: { records: string; applications: string; balances: string };
}

/** A topic with records, a migrated schema (through `oncely migrate`), projection tables. */
async function setup(partitions: number, perPartition: number): Promise<Setup> {
  const topic = await createTopic(partitions);
  const schema = freshSchema();
  const group = randomName('g');
  const migrated = await oncely(['migrate', '--schema', schema]);
  expect(migrated.code, migrated.stderr).toBe(0);
  const tables = await makeProjectionTables(schema);
  await producePayments(topic, partitions, perPartition);
  return { topic, schema, group, tables, env: { ONCELY_SCHEMA: schema, APP_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: group } };
}

/** A bounded run of an app module through the binary. */
async function runToEnd(app: string, env: Record<string, string>, extra: string[] = []) {
  const r = await oncely(['run', app, '--until', 'caught-up', '--batch-max-records', '25', ...extra], env);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

describe('the oncely binary', () => {
  it('migrate: says what it applied (--json too), then that the schema is up to date; exits 2 without a database', async () => {
    const schema = freshSchema();
    const first = await oncely(['migrate', '--schema', schema]);
    expect(first.code, first.stderr).toBe(0);
    const applied = first.stdout.split('\n').filter((l) => l.startsWith('applied '));
    expect(applied.length).toBeGreaterThan(0);
    expect(applied[0]).toBe('applied 0001_initial.sql');
    expect(first.stdout).toContain(
      `schema ${schema} migrated to version ${applied.length} (${applied.length} migration(s) applied)`,
    );
    expect(first.stdout).not.toContain('up to date');
    const again = await oncely(['migrate', '--schema', schema]);
    expect(again.stdout).toBe(`schema ${schema} is up to date (version ${applied.length})\n`);
    const other = freshSchema();
    const out = await oncelyJson<{ schema: string; version: number; applied: string[] }>(['migrate', '--schema', other]);
    expect(out).toEqual({ schema: other, version: applied.length, applied: applied.map((l) => l.slice('applied '.length)) });
    const noDb = await oncely(['migrate'], { DATABASE_URL: '' });
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toMatch(/No database: pass --database-url/);
    const badSchema = await oncely(['status', '--schema', 'Bad-Schema']);
    expect(badSchema.code).toBe(2);
    expect(badSchema.stderr).toMatch(/schema must match/);
  });

  it('a DATABASE_URL naming a database that does not exist, or that is no URL, exits 2 at once with what to fix', async () => {
    const missing = new URL(databaseUrl());
    missing.pathname = `/${randomName('nodb')}`;
    const name = missing.pathname.slice(1);
    const app = { APP_SCHEMA: 'unused', APP_TOPIC: 'unused', APP_GROUP: 'unused' };
    for (const args of [['migrate'], ['status'], ['run', resolve(FIXTURES, 'projection-v1.ts')]]) {
      // JSON for run: the worker's error line says it (and the command does not say it again).
      const r = await oncely(args, { DATABASE_URL: missing.toString(), ...app, ONCELY_LOG_FORMAT: 'json' });
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2);
      const said = stderrText(r.stderr);
      expect(said).toContain(`has no such database (3D000: database "${name}" does not exist)`);
      expect(said.split('has no such database').length - 1, said).toBe(1);
      expect(said).toContain(`Create it (\`createdb ${name}\``);
      // It never registered, so it does not try to unregister (and fail on the same cause again).
      expect(r.stderr).not.toMatch(/could not unregister/);
    }
    // node-postgres would look up a host named "base" for this, and a worker would wait for it.
    const notUrl = await oncely(['run', resolve(FIXTURES, 'projection-v1.ts')], { DATABASE_URL: 'localhost/app', ...app });
    expect(notUrl.code, notUrl.stderr).toBe(2);
    expect(notUrl.stderr).toMatch(
      /--database-url \(from DATABASE_URL\) is not a PostgreSQL URL: expected postgres:\/\/user:password@host/,
    );
  });

  it('a DATABASE_URL at a server that accepts connections and never answers ends with an error, not a hang', async () => {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => sockets.add(socket)); // accepts, never says a word
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    try {
      const r = await oncelyBounded(['migrate'], { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/app` }, 90_000);
      expect(r.hung, r.stderr).toBe(false);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/timeout/i);
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });

  it('run --until caught-up: stops at the high watermark captured at start, with progress and the right counts', async () => {
    const s = await setup(2, 120);
    // Slow enough that more records can be produced while it runs; those must be left for the next run.
    const run = startOncely(
      ['run', V1, '--until', 'caught-up', '--batch-max-records', '10', '--progress-interval', '100', '--json'],
      {
        ...s.env,
        APP_DELAY_MS: '3',
      },
    );
    await until(
      async () => (await pgPool().query(`select count(*)::int as n from ${s.schema}.offset_log`)).rows[0].n > 0,
      'a commit',
    );
    await producePayments(s.topic, 2, 40, 120);
    const r = await run.result;
    expect(r.code, r.stderr).toBe(0);
    expect(await positions(s.schema, s.group)).toEqual({ [`${s.topic}:0`]: '120', [`${s.topic}:1`]: '120' });
    expect((await pgPool().query(`select count(*)::int as n from ${s.tables.records}`)).rows[0].n).toBe(240);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ group: s.group, caughtUp: true, done: '240', total: '240' });
    // Not a TTY: plain progress lines, the last one complete.
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('progress '));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.at(-1)).toMatch(/^progress done=240 total=240 percent=100\.0 rate=\d+\/s eta=0ms$/);
    // The next bounded run takes the rest.
    const next = await runToEnd(V1, s.env, ['--json']);
    expect(JSON.parse(next.stdout)).toMatchObject({ done: '80', total: '80' });
  });

  it('run --mirror-group-id: Kafka group offsets match the positions in Postgres after the run', async () => {
    const s = await setup(3, 70);
    const mirrorGroup = randomName('mirror');
    await runToEnd(V1, s.env, ['--mirror-group-id', mirrorGroup]);
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      const [offsets] = await admin.fetchOffsets({ groupId: mirrorGroup, topics: [s.topic] });
      const inKafka = Object.fromEntries(offsets!.partitions.map((p) => [`${s.topic}:${p.partition}`, p.offset]));
      expect(inKafka).toEqual(await positions(s.schema, s.group));
      expect(Object.values(inKafka)).toEqual(['70', '70', '70']);
    } finally {
      await admin.disconnect();
    }
  });

  it('status: a table for people, --json for scripts, --watch until interrupted', async () => {
    const s = await setup(2, 30);
    await runToEnd(V1, s.env);
    await producePayments(s.topic, 2, 5, 30);
    const table = await oncely(['status', '--group', s.group], s.env);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(
      /GROUP\s+TOPIC\s+PARTITION\s+NEXT-OFFSET\s+HIGH-WATERMARK\s+LAG\s+STATE\s+DEAD-LETTERS\s+OWNER\s+EPOCH\s+LEASE-LEFT\s+LAST-COMMIT/,
    );
    expect(table.stdout).toContain('total lag 10');
    const rows = await oncelyJson<Array<Record<string, unknown>>>(['status', '--group', s.group], s.env);
    expect(rows.map((r) => [r.partition, r.nextOffset, r.highWatermark, r.lag, r.owner])).toEqual([
      [0, '30', '35', '5', null],
      [1, '30', '35', '5', null],
    ]);
    expect(rows.every((r) => typeof r.lastCommitAgeMs === 'number')).toBe(true);
    const watch = startOncely(['status', '--group', s.group, '--watch', '--interval', '0.2', '--json'], s.env);
    let seen = '';
    watch.child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString();
    });
    await until(() => seen.split('\n').filter(Boolean).length >= 2, 'two --watch frames');
    watch.child.kill('SIGINT');
    const done = await watch.result;
    expect(done.code).toBe(0);
    const frames = done.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(frames[0]).toHaveLength(2);
  });

  it('offsets reset: a dry run changes nothing; --execute moves, bumps epochs, audits; errors exit 2', async () => {
    const s = await setup(2, 40);
    await runToEnd(V1, s.env);
    const before = await snapshot(s.schema);
    const dry = await oncely(['offsets', 'reset', '--group', s.group, '--shift-by', '-15'], s.env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('Dry run: nothing changed');
    expect(dry.stdout).toContain('30 record(s) to reprocess');
    for (const flags of [
      ['--to-earliest'],
      ['--to-offset', '7'],
      ['--by-duration', 'PT1H'],
      ['--to-datetime', '2000-01-01T00:00:00Z'],
    ]) {
      const r = await oncely(['offsets', 'reset', '--group', s.group, ...flags, '--json'], s.env);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).executed).toBe(false);
    }
    expect(await snapshot(s.schema)).toEqual(before);

    const plan = await oncelyJson<{ executed: boolean; entries: Array<{ current: string; next: string; clamped?: string }> }>(
      [
        'offsets',
        'reset',
        '--group',
        s.group,
        '--topic',
        `${s.topic}:1`,
        '--to-offset',
        '999',
        '--execute',
        '--actor',
        'ops-bot',
      ],
      s.env,
    );
    expect(plan.executed).toBe(true);
    expect(plan.entries).toMatchObject([{ current: '40', next: '40', clamped: 'high-watermark' }]);
    const shifted = await oncely(
      ['offsets', 'reset', '--group', s.group, '--shift-by', '-15', '--execute', '--actor', 'ops-bot'],
      s.env,
    );
    expect(shifted.code, shifted.stderr).toBe(0);
    expect(shifted.stdout).toContain('Applied in one transaction');
    expect(await positions(s.schema, s.group)).toEqual({ [`${s.topic}:0`]: '25', [`${s.topic}:1`]: '25' });
    const epochs = await pgPool().query(`select epoch::text from ${s.schema}.partitions order by partition`);
    const epochsBefore = (before.partitions as Array<{ epoch: string }>).map((r) => BigInt(r.epoch) + 1n);
    expect(epochs.rows.map((r) => r.epoch)).toEqual(epochsBefore.map(String));
    const audit = await pgPool().query(`select actor, action, details from ${s.schema}.admin_audit order by id`);
    expect(audit.rows.map((r) => [r.actor, r.action])).toEqual([
      ['ops-bot', 'offsets.reset'],
      ['ops-bot', 'offsets.reset'],
    ]);
    expect(audit.rows[1].details.partitions).toEqual([
      { topic: s.topic, partition: 0, from: '40', to: '25' },
      { topic: s.topic, partition: 1, from: '40', to: '25' },
    ]);
    // The workers re-apply from 25: 15 records per partition a second time.
    await runToEnd(V1, s.env);
    expect((await pgPool().query(`select count(*)::int as n from ${s.tables.applications}`)).rows[0].n).toBe(80 + 30);

    const two = await oncely(['offsets', 'reset', '--group', s.group, '--to-earliest', '--to-latest'], s.env);
    expect(two.code).toBe(2);
    expect(two.stderr).toMatch(/exactly one of --to-offset/);
    const badDuration = await oncely(['offsets', 'reset', '--group', s.group, '--by-duration', '1 hour'], s.env);
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toMatch(/ISO 8601 duration/);
    const noBroker = await oncely(['offsets', 'reset', '--group', s.group, '--to-earliest'], { ...s.env, KAFKA_BROKERS: '' });
    expect(noBroker.code).toBe(2);
    expect(noBroker.stderr).toMatch(/No Kafka brokers/);
  });

  it('offsets reset --to-time-of-commit lands on the positions committed at that moment; offsets history lists commits', async () => {
    const s = await setup(2, 30);
    await runToEnd(V1, s.env);
    await gap();
    const moment = new Date().toISOString();
    const then = await positions(s.schema, s.group);
    await gap();
    await producePayments(s.topic, 2, 20, 30);
    await runToEnd(V1, s.env);
    expect(Object.values(await positions(s.schema, s.group))).toEqual(['50', '50']);
    const r = await oncely(['offsets', 'reset', '--group', s.group, '--to-time-of-commit', moment, '--execute'], s.env);
    expect(r.code, r.stderr).toBe(0);
    expect(await positions(s.schema, s.group)).toEqual(then);
    const history = await oncelyJson<Array<{ toOffset: string; partition: number }>>(
      ['offsets', 'history', '--group', s.group, '--partition', '0'],
      s.env,
    );
    expect(history[0]!.toOffset).toBe('50');
    expect(history.every((h) => h.partition === 0)).toBe(true);
  });

  it('offsets checkpoint create|list|show|delete, and reset --to-checkpoint', async () => {
    const s = await setup(2, 20);
    await runToEnd(V1, s.env);
    const created = await oncely(['offsets', 'checkpoint', 'create', 'pre-deploy', '--group', s.group], s.env);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('checkpoint pre-deploy');
    const dup = await oncely(['offsets', 'checkpoint', 'create', 'pre-deploy', '--group', s.group], s.env);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/already exists/);
    const list = await oncelyJson<Array<{ name: string; partitions: number }>>(
      ['offsets', 'checkpoint', 'list', '--group', s.group],
      s.env,
    );
    expect(list).toMatchObject([{ name: 'pre-deploy', partitions: 2 }]);
    const shown = await oncelyJson<Array<{ nextOffset: string }>>(
      ['offsets', 'checkpoint', 'show', 'pre-deploy', '--group', s.group],
      s.env,
    );
    expect(shown.map((e) => e.nextOffset)).toEqual(['20', '20']);
    await producePayments(s.topic, 2, 10, 20);
    await runToEnd(V1, s.env);
    const back = await oncely(['offsets', 'reset', '--group', s.group, '--to-checkpoint', 'pre-deploy', '--execute'], s.env);
    expect(back.code, back.stderr).toBe(0);
    expect(Object.values(await positions(s.schema, s.group))).toEqual(['20', '20']);
    const table = await oncely(['offsets', 'checkpoint', 'list', '--group', s.group], s.env);
    expect(table.stdout).toMatch(/NAME\s+CREATED\s+PARTITIONS\s+TOPICS\n pre-deploy|pre-deploy/);
    const del = await oncely(['offsets', 'checkpoint', 'delete', 'pre-deploy', '--group', s.group], s.env);
    expect(del.code, del.stderr).toBe(0);
    expect(await oncelyJson(['offsets', 'checkpoint', 'list', '--group', s.group], s.env)).toEqual([]);
    const missing = await oncely(['offsets', 'reset', '--group', s.group, '--to-checkpoint', 'pre-deploy'], s.env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/No checkpoint pre-deploy/);
  });

  it('replay rebuilds a second projection (a new handler version in group B) equal to the first', async () => {
    const s = await setup(3, 80);
    await runToEnd(V1, s.env);
    const b = randomName('b');
    const dry = await oncely(
      ['replay', '--from-group', s.group, '--group', b, '--to-datetime', '1970-01-01T00:00:00Z', '--dry-run'],
      s.env,
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(await positions(s.schema, b)).toEqual({});
    const r = await oncely(['replay', '--from-group', s.group, '--group', b, '--to-datetime', '1970-01-01T00:00:00Z'], s.env);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.values(await positions(s.schema, b))).toEqual(['0', '0', '0']);
    await runToEnd(V2, { ...s.env, APP_GROUP: b });
    const v1 = await pgPool().query(
      `select account, sum(cents)::bigint::text as cents from ${s.tables.records} group by 1 order by 1`,
    );
    const v2 = await pgPool().query(`select account, cents::text from ${s.tables.balances} order by 1`);
    expect(v2.rows).toEqual(v1.rows);
    expect(v1.rows.length).toBeGreaterThan(5);
    // Replaying at the source's current positions: the new group starts where A is.
    const c = randomName('c');
    const json = await oncelyJson<{ entries: Array<{ next: string }> }>(['replay', '--from-group', s.group, '--group', c], s.env);
    expect(json.entries.map((e) => e.next)).toEqual(['80', '80', '80']);
    const again = await oncely(['replay', '--from-group', s.group, '--group', c], s.env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already has 3 stored position/);
  });
});
