/**
 * The binary's manners: bad usage and configuration exit 2 at once with a message naming the flag
 * (or its variable), nothing left open to keep the process alive; a usage error is one line (the
 * error, the closest valid flag or command, where the help is); the other exit codes as
 * documented (0 clean stop, 1 failed, 130 aborted); --version.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanup, stopOnCleanup } from '../support/cleanup.js';
import { collect, stderrText } from '../support/cli.js';
import { brokers, createTopic, databaseUrl, freshSchema, randomName, requireBuild } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { freePort } from '../support/ports.js';
import { FIXTURES, makeProjectionTables, oncely, oncelyBounded, producePayments, ROOT, startOncely } from './support.js';

const V1 = resolve(FIXTURES, 'projection-v1.ts');
// Enough for the fixture app to load; none of these runs gets as far as its topic.
const APP_ENV = { APP_SCHEMA: 'unused', APP_TOPIC: 'unused', APP_GROUP: 'unused' };

interface UsageCase {
  args: string[];
  env?: Record<string, string>;
  message: RegExp;
}

const cases: UsageCase[] = [
  {
    args: ['run', V1, '--batch-max-records', '0'],
    message: /^oncely: --batch-max-records must be an integer from 1 to 1000000; got 0/m,
  },
  { args: ['run', V1, '--batch-max-records', 'many'], message: /^oncely: --batch-max-records must be an integer; got many\./m },
  {
    args: ['run', V1],
    env: { ONCELY_BATCH_MAX_RECORDS: '0' },
    message: /^oncely: --batch-max-records \(from ONCELY_BATCH_MAX_RECORDS\) must be an integer from 1 to 1000000; got 0/m,
  },
  { args: ['run', V1, '--worker', '5/4'], message: /^oncely: --worker: Bad worker split "5\/4": expected i\/n/m },
  { args: ['run', V1, '--partitions', 'payments:x'], message: /^oncely: --partitions: Bad partition selector/m },
  { args: ['run', V1, '--lease', '10'], message: /^oncely: --lease must be an integer from 1000 /m },
  {
    args: ['run', V1, '--retry-initial-delay', '500', '--retry-max-delay', '100'],
    message: /^oncely: --retry-max-delay \(100\) must not be below --retry-initial-delay \(500\)/m,
  },
  {
    args: ['run', V1, '--retry-max-delay', '3000000000'],
    message: /^oncely: --retry-max-delay must be an integer from 0 to 2147483647; got 3000000000/m,
  },
  { args: ['run', V1, '--pool-size', '0'], message: /^oncely: --pool-size must be an integer between 1 and 1000; got 0/m },
  { args: ['run', V1, '--schema', 'Bad-Schema'], message: /^oncely: --schema must match/m },
  { args: ['run', V1, '--initial-offset', 'yesterday'], message: /^oncely: --initial-offset must be earliest, latest or/m },
  { args: ['run', V1, '--progress-interval', '0'], message: /^oncely: --progress-interval must be a positive number/m },
  {
    args: ['run', V1, '--on-exhausted', 'retry'],
    message: /option '--on-exhausted <what>' argument 'retry' is invalid\. Allowed choices are dead-letter, stop-partition/,
  },
  {
    args: ['run', V1],
    env: { ONCELY_ON_EXHAUSTED: 'retry' },
    message: /^oncely: ONCELY_ON_EXHAUSTED \(--on-exhausted\) must be one of dead-letter, stop-partition; got retry\./m,
  },
  {
    args: ['run', V1],
    env: { ONCELY_PROGRESS: 'maybe' },
    message: /^oncely: ONCELY_PROGRESS \(--no-progress\) must be true or false/m,
  },
  { args: ['run', V1, '--kafka-sasl-mechanism', 'plain'], message: /^oncely: --kafka-sasl-username is required with/m },
  {
    args: ['run', V1, '--kafka-sasl-mechanism', 'plain', '--kafka-sasl-username', 'u'],
    message: /^oncely: SASL plain needs a password: set ONCELY_KAFKA_SASL_PASSWORD or pass --kafka-sasl-password-file/m,
  },
  {
    args: ['run', V1, '--kafka-sasl-mechanism', 'gssapi'],
    message: /argument 'gssapi' is invalid\. Allowed choices are plain, scram-sha-256, scram-sha-512/,
  },
  {
    args: ['run', V1, '--kafka-sasl-username', 'u'],
    env: { ONCELY_KAFKA_SASL_PASSWORD: 'pw' },
    message: /^oncely: --kafka-sasl-mechanism is missing/m,
  },
  {
    args: ['run', V1, '--kafka-cert-file', 'client.pem'],
    message: /^oncely: --kafka-cert-file and --kafka-key-file go together/m,
  },
  {
    args: ['run', V1, '--kafka-ca-file', 'no-such-ca.pem'],
    message: /^oncely: --kafka-ca-file no-such-ca\.pem: cannot read it \(ENOENT\)/m,
  },
  { args: ['run', V1], env: { KAFKA_BROKERS: '' }, message: /^oncely: No Kafka brokers: pass --brokers/m },
  {
    args: ['run', V1, '--brokers', 'localhost'],
    message: /^oncely: --brokers has "localhost"; each broker must be "host:port"/m,
  },
  { args: ['run', 'no-such-app.js'], message: /^oncely: Cannot load app module no-such-app\.js/m },
  { args: ['run'], message: /^oncely: run needs the app module: oncely run \.\/dist\/app\.js \(or set ONCELY_APP\)/m },
  { args: ['run', V1, '--no-such-flag'], message: /unknown option '--no-such-flag'/ },
  { args: ['status', '--interval', 'soon'], message: /^oncely: --interval must be a number of seconds/m },
  { args: ['offsets', 'reset', '--to-earliest'], message: /^oncely: --group is required \(or set ONCELY_GROUP\)\./m },
  { args: ['offsets', 'history', '--group', 'g', '--limit', 'all'], message: /^oncely: --limit must be a non-negative integer/m },
  { args: ['migrate'], env: { DATABASE_URL: '' }, message: /^oncely: No database: pass --database-url/m },
  { args: ['no-such-command'], message: /unknown command 'no-such-command'/ },
  { args: [], message: /Usage: oncely/ },
];

/** Well below the ~30 s an idle pool left open kept the process alive; far above a normal start. */
const DEADLINE_MS = 20_000;

describe('bad usage and configuration', () => {
  const named = cases.map((c) => ({
    ...c,
    name: `oncely ${c.args.map((a) => (a === V1 ? 'app.ts' : a)).join(' ')}${c.env ? ` with ${Object.entries(c.env).map(([k, v]) => `${k}=${v}`)}` : ''}`,
  }));
  it.for(named)('exit 2 at once: $name', async (c) => {
    const r = await oncelyBounded(c.args, { ...APP_ENV, ...c.env }, DEADLINE_MS);
    expect(r.hung, 'still running at the deadline').toBe(false);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(c.message);
  });

  it('a .ts app module that Node cannot strip (parameter properties, decorators): exit 2 naming tsc and tsx', async () => {
    requireBuild();
    const dir = mkdtempSync(join(tmpdir(), 'oncely-ts-app-'));
    cleanup(() => rmSync(dir, { recursive: true, force: true }));
    const app = join(dir, 'app.ts');
    writeFileSync(
      app,
      'class Repository {\n  constructor(private readonly table: string) {}\n}\nexport default new Repository("t");\n',
    );
    // The published binary under plain node (the tests' own runs load .ts through tsx).
    const child = stopOnCleanup(
      spawn(process.execPath, [resolve(ROOT, 'packages/cli/dist/bin.js'), 'run', app], {
        cwd: dir,
        env: { ...process.env, KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const r = await collect(child);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`oncely: Cannot load app module ${app}: `);
    expect(r.stderr).toContain(
      "compile it (tsc) and run the .js, or run oncely under tsx: NODE_OPTIONS='--import tsx' oncely run",
    );
  });

  it('a database that refuses connections: exit 1 at once, saying to run the command again (it retries nothing)', async () => {
    const closed = new URL(databaseUrl());
    closed.port = String(await freePort());
    const r = await oncelyBounded(['migrate'], { DATABASE_URL: closed.toString() }, DEADLINE_MS);
    expect(r.hung).toBe(false);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /^oncely: STORE_UNAVAILABLE: migrate schema oncely: PostgreSQL at .* is unavailable \(ECONNREFUSED/m,
    );
    expect(r.stderr).toContain('; nothing was done: run the command again once it answers. Check that the server is running');
    expect(r.stderr).not.toContain('will be retried');
  });

  it('a missing topic is a configuration error: exit 2 naming the topic, the pool closed', async () => {
    const schema = freshSchema();
    const missing = randomName('no-such-topic');
    const r = await oncelyBounded(
      ['run', V1, '--schema', schema, '--log-format', 'json'],
      { ...APP_ENV, APP_TOPIC: missing },
      DEADLINE_MS,
    );
    expect(r.hung).toBe(false);
    expect(r.code, r.stderr).toBe(2);
    // Once, in the worker's error line (not again by the command).
    const said = stderrText(r.stderr);
    expect(said).toContain(`error worker failed to start TOPIC_NOT_FOUND Topic "${missing}" does not exist on the Kafka cluster`);
    expect(said.split('does not exist on the Kafka cluster').length - 1, said).toBe(1);
  });
});

describe('a usage error is one line', () => {
  // The error, commander's closest valid name when it has one, and where the help is: no help text.
  const lines: Array<[string[], string]> = [
    [['run', V1, '--no-such-flag'], "oncely: unknown option '--no-such-flag'; see oncely run --help"],
    [['status', '--intervall', '1'], "oncely: unknown option '--intervall' (did you mean --interval?); see oncely status --help"],
    [
      ['offsets', 'reset', '--to-erliest'],
      "oncely: unknown option '--to-erliest' (did you mean --to-earliest?); see oncely offsets reset --help",
    ],
    [['stauts'], "oncely: unknown command 'stauts' (did you mean status?); see oncely --help"],
  ];
  const named = lines.map(([args, line]) => ({ args, line, name: args.map((a) => (a === V1 ? 'app.ts' : a)).join(' ') }));
  it.for(named)('exit 2: oncely $name', async ({ args, line }) => {
    const r = await oncelyBounded(args, APP_ENV, DEADLINE_MS);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toBe(`${line}\n`);
    expect(r.stdout).toBe('');
  });
});

describe('exit codes of oncely run', () => {
  /** A worker whose handler takes `delayMs` per record, one record per transaction, with a handler running. */
  async function slowWorker(delayMs: number) {
    const topic = await createTopic(1);
    const schema = freshSchema();
    await makeProjectionTables(schema);
    await producePayments(topic, 1, 50);
    const run = startOncely(['run', V1, '--batch-max-records', '1', '--schema', schema], {
      APP_SCHEMA: schema,
      APP_TOPIC: topic,
      APP_GROUP: randomName('g'),
      APP_DELAY_MS: String(delayMs),
      APP_ANNOUNCE: '1',
      ONCELY_LOG_LEVEL: 'info',
    });
    let stderr = '';
    run.child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // The second record: its handler runs inside a transaction for delayMs.
    await until(() => stderr.includes('handling 0/1\n'), 'a handler in flight');
    return { run, logs: () => stderr };
  }

  it('0 after a drain (SIGTERM), 130 when a second SIGTERM aborts the drain', async () => {
    const clean = await slowWorker(1500);
    clean.run.child.kill('SIGTERM');
    const stopped = await clean.run.result;
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr).toMatch(/SIGTERM: draining/);

    const aborted = await slowWorker(5000);
    aborted.run.child.kill('SIGTERM');
    await until(() => /SIGTERM: draining/.test(aborted.logs()), 'the drain to begin');
    aborted.run.child.kill('SIGTERM');
    const r = await aborted.run.result;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/SIGTERM again: aborting/);
  });

  it('1 when the worker fails for a reason no flag fixes (no broker answers)', async () => {
    const schema = freshSchema();
    const r = await oncelyBounded(
      ['run', V1, '--schema', schema, '--brokers', '127.0.0.1:1', '--kafka-connection-timeout', '200', '--start-timeout', '1000'],
      { ...APP_ENV, ONCELY_LOG_LEVEL: 'error' },
      60_000,
    );
    expect(r.hung).toBe(false);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/KAFKA_UNAVAILABLE/);
  });
});

describe('oncely --version', () => {
  it('prints the version of @oncely/cli (-V too)', async () => {
    const { version } = JSON.parse(readFileSync(resolve(ROOT, 'packages/cli/package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await oncely([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
    }
  });
});
