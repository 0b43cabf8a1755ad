/**
 * A sentinel password goes into every place a secret can enter (a database URL the database
 * rejects, in each form the driver reads a password from; kafkajs SASL options, and the CLI's SASL
 * variable, file and refused flag, for a broker without SASL) and must appear in no captured
 * output: logger lines, error messages and their causes, the CLI's stdout and stderr.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createWorker, defineApp, json, KafkajsPartitionReader } from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import { describe, expect, it } from 'vitest';
import { cleanup } from '../support/cleanup.js';
import { brokers, createTopic, freshSchema, randomName } from '../support/fixtures.js';
import { pgStore } from '../support/oncely.js';
import { captureLogger, FIXTURES, oncely, privatePostgres } from './support.js';

const SENTINEL = 'S3ntinel-p4ss';

/** Every message, stack and cause of an error, as text. */
function describeError(e: unknown): string {
  const out: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 10; depth++) {
    const err = cur as { message?: unknown; stack?: unknown; cause?: unknown };
    out.push(String(cur), String(err.message), String(err.stack), JSON.stringify(cur, Object.getOwnPropertyNames(cur)));
    cur = err.cause;
  }
  return out.join('\n');
}

describe('secrets never reach output', () => {
  it('a rejected database password, in every form the driver takes it: store errors, worker logs and every CLI command', async () => {
    const pg = await privatePostgres({ password: 'the-right-one' });
    const base = new URL(pg.url);
    base.password = '';
    const plain = base.toString(); // postgres://postgres@127.0.0.1:<port>/postgres
    const withUserinfo = new URL(plain);
    withUserinfo.password = SENTINEL;
    const dir = mkdtempSync(join(tmpdir(), 'oncely-pgpass-'));
    cleanup(() => rmSync(dir, { recursive: true, force: true }));
    const pgpass = join(dir, 'pgpass');
    writeFileSync(pgpass, `127.0.0.1:${pg.port}:*:postgres:${SENTINEL}\n`, { mode: 0o600 });
    // Every way node-postgres takes a password: userinfo, the `password` query parameter (also
    // among others, and on postgresql:// URLs), PGPASSWORD, and a password file (PGPASSFILE).
    const forms: Array<{ name: string; url: string; env: Record<string, string> }> = [
      { name: 'userinfo', url: withUserinfo.toString(), env: {} },
      { name: 'query', url: `${plain}?password=${SENTINEL}`, env: {} },
      {
        name: 'query among others',
        url: `${plain.replace('postgres://', 'postgresql://')}?sslmode=disable&password=${SENTINEL}&application_name=x`,
        env: {},
      },
      { name: 'PGPASSWORD', url: plain, env: { PGPASSWORD: SENTINEL } },
      { name: 'PGPASSFILE', url: plain, env: { PGPASSFILE: pgpass } },
    ];
    const captured: string[] = [];
    const withEnv = async <T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> => {
      const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
      Object.assign(process.env, env);
      try {
        return await fn();
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    };

    for (const form of forms) {
      await withEnv(form.env, async () => {
        const store = new PostgresStore({ connectionString: form.url, schema: freshSchema('sec') });
        const err = await store.migrate().then(
          () => undefined,
          (e: unknown) => e,
        );
        await store.close();
        expect(err, form.name).toBeDefined();
        expect(String((err as Error).message), form.name).toMatch(/password authentication failed|28P01/);
        captured.push(describeError(err), String(store.options.target));
      });
    }

    const topic = await createTopic(1);
    const logger = captureLogger();
    const w = createWorker(
      defineApp({ group: 'sec' }).handle({ topic, codec: json() }, async () => {}),
      {
        store: new PostgresStore({ connectionString: forms[1]!.url, schema: freshSchema('sec') }),
        reader: new KafkajsPartitionReader({ brokers: brokers(), logger }),
        logger,
      },
    );
    captured.push(
      describeError(
        await w.start().then(
          () => w.stop(),
          (e: unknown) => e,
        ),
      ),
    );
    captured.push(...logger.lines);

    // Every command once, the forms in turn, the URL given by flag or by environment in turn.
    const app = resolve(FIXTURES, 'orders-fixed.ts');
    const commands: string[][] = [
      ['migrate'],
      ['run', app, '--until', 'caught-up'],
      ['status'],
      ['offsets', 'reset', '--group', 'g', '--to-offset', '0'],
      ['offsets', 'checkpoint', 'list', '--group', 'g'],
      ['offsets', 'history', '--group', 'g'],
      ['replay', '--from', 'g', '--to', 'h', '--app', app],
      ['dlq', 'list'],
      ['dlq', 'show', '1'],
      ['dlq', 'requeue', '1', '--app', app],
      ['dlq', 'purge', '--group', 'g', '--yes'],
    ];
    for (const [i, args] of commands.entries()) {
      const form = forms[i % forms.length]!;
      const env = { ...form.env, ONCELY_LOG_LEVEL: 'debug', ORDERS_GROUP: 'g', ORDERS_TOPIC: topic, ORDERS_TABLE: 'orders' };
      const r =
        i % 2 === 0
          ? await oncely([...args, '--database-url', form.url], env)
          : await oncely(args, { ...env, DATABASE_URL: form.url });
      // Credentials the database refuses are configuration, and so is bad usage: exit 2.
      expect(r.code, `${args.join(' ')} (${form.name}): ${r.stdout}${r.stderr}`).toBe(2);
      captured.push(r.stdout, r.stderr);
    }
    const all = captured.join('\n');
    expect(all).toMatch(/password authentication failed/); // the failure itself is reported…
    expect(all).toContain('***'); // …with the password masked
    for (const line of all.split('\n')) expect(line).not.toContain(SENTINEL);
  }, 240_000); // eleven CLI runs, each a fresh tsx process

  it('kafkajs SASL credentials for a broker without SASL: reader errors and logger lines', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('sasl');
    const logger = captureLogger();
    const reader = new KafkajsPartitionReader({
      brokers: brokers(),
      sasl: { mechanism: 'plain', username: 'oncely', password: SENTINEL },
      logger,
      connectionTimeoutMs: 2000,
      retryBackoffMs: 50,
      retryBackoffMaxMs: 200,
    });
    const w = createWorker(
      defineApp({ group: 'sasl' }).handle({ topic, codec: json() }, async () => {}),
      {
        store: await pgStore(schema),
        reader,
        logger,
        closeOnStop: false,
      },
    );
    const err = await w.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    await w.abort().catch(() => {});
    expect(err).toBeDefined();
    const all = [describeError(err), ...logger.lines].join('\n');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(SENTINEL);
  });

  it('the SASL password through every CLI command that talks to Kafka: refused, named, never printed', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('sasl');
    const dir = mkdtempSync(join(tmpdir(), 'oncely-secret-'));
    cleanup(() => rmSync(dir, { recursive: true, force: true }));
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, `${SENTINEL}\n`, { mode: 0o600 });
    const app = resolve(import.meta.dirname, '../cli/fixtures/projection-v1.ts');
    const env = {
      APP_SCHEMA: schema,
      APP_TOPIC: topic,
      APP_GROUP: 'sasl',
      ONCELY_SCHEMA: schema,
      ONCELY_LOG_LEVEL: 'debug',
      ONCELY_KAFKA_SASL_USERNAME: 'oncely',
    };
    const migrated = await oncely(['migrate'], env);
    expect(migrated.code, migrated.stderr).toBe(0);
    const viaEnv = { ...env, ONCELY_KAFKA_SASL_MECHANISM: 'plain', ONCELY_KAFKA_SASL_PASSWORD: SENTINEL };
    const viaFile = { ...env, ONCELY_KAFKA_SASL_MECHANISM: 'scram-sha-256', ONCELY_KAFKA_SASL_PASSWORD_FILE: passwordFile };
    // The shared broker takes no SASL: every command is refused at its first Kafka request.
    const commands: Array<[string[], Record<string, string>, string]> = [
      [['run', app], viaEnv, 'PLAIN'],
      [['status'], viaFile, 'SCRAM-SHA-256'],
      [
        ['offsets', 'reset', '--group', 'sasl', '--topic', `${topic}:0`, '--to-datetime', '2000-01-01T00:00:00Z'],
        viaEnv,
        'PLAIN',
      ],
      [
        ['replay', '--from-group', 'sasl', '--group', randomName('b'), '--to-datetime', '2000-01-01T00:00:00Z'],
        viaFile,
        'SCRAM-SHA-256',
      ],
    ];
    const captured: string[] = [];
    for (const [args, e, mechanism] of commands) {
      const r = await oncely(args, e);
      const out = `${args.join(' ')}: ${r.stdout}${r.stderr}`;
      expect(r.code, out).toBe(2);
      // `run` says it on the worker's failure line (logfmt escapes the quotes), the others as `oncely: CODE: …`.
      expect(r.stderr, out).toContain('KAFKA_AUTH_FAILED');
      expect(r.stderr, out).toMatch(new RegExp(`SASL ${mechanism} authentication of user \\\\?"oncely\\\\?"`));
      captured.push(r.stdout, r.stderr);
    }
    // On the command line the password is refused, and not repeated, even misspelt.
    for (const flag of ['--kafka-sasl-password', '--kafka-sasl-pasword']) {
      const r = await oncely(['status', `${flag}=${SENTINEL}`], env);
      expect(r.code).toBe(2);
      captured.push(r.stdout, r.stderr);
    }
    expect(captured.join('\n')).toMatch(/--kafka-sasl-password is not accepted: .* Set ONCELY_KAFKA_SASL_PASSWORD/);
    expect(captured.join('\n')).not.toContain(SENTINEL);
  });
});
