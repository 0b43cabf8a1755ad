/**
 * A sentinel password goes into every place a secret can enter (a DATABASE_URL the database
 * rejects, kafkajs SASL options for a broker without SASL) and must appear in no captured output:
 * logger lines, error messages and their causes, the CLI's stdout and stderr.
 */
import { createWorker, defineApp, json, KafkajsPartitionReader } from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import { describe, expect, it } from 'vitest';
import { brokers, createTopic, freshSchema } from '../support/fixtures.js';
import { pgStore } from '../support/oncely.js';
import { captureLogger, oncely, privatePostgres } from './support.js';

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
  it('a rejected database password: store errors, worker logs and every CLI command', async () => {
    const pg = await privatePostgres({ password: 'the-right-one' });
    const bad = new URL(pg.url);
    bad.password = SENTINEL;
    const badUrl = bad.toString();
    const captured: string[] = [];

    const store = new PostgresStore({ connectionString: badUrl, schema: freshSchema('sec') });
    const err = await store.migrate().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    captured.push(describeError(err));
    expect(String((err as Error).message)).toMatch(/password authentication failed|28P01/);
    await store.close();

    const topic = await createTopic(1);
    const logger = captureLogger();
    const w = createWorker(
      defineApp({ group: 'sec' }).handle({ topic, codec: json() }, async () => {}),
      {
        store: new PostgresStore({ connectionString: badUrl, schema: freshSchema('sec') }),
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

    // Each command once, the URL given by flag or by environment (both paths are covered).
    const commands: Array<[string[], 'flag' | 'env']> = [
      [['migrate'], 'env'],
      [['status'], 'flag'],
      [['dlq', 'list'], 'env'],
      [['dlq', 'purge', '--group', 'g', '--yes'], 'flag'],
      [['offsets', 'checkpoint', 'list', '--group', 'g'], 'flag'],
    ];
    for (const [args, via] of commands) {
      const r =
        via === 'flag'
          ? await oncely([...args, '--database-url', badUrl], { ONCELY_LOG_LEVEL: 'debug' })
          : await oncely(args, { DATABASE_URL: badUrl, ONCELY_LOG_LEVEL: 'debug' });
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).not.toBe(0);
      captured.push(r.stdout, r.stderr);
    }
    const all = captured.join('\n');
    expect(all).toMatch(/password authentication failed/); // the failure itself is reported…
    expect(all).toContain('***'); // …with the password masked
    expect(all).not.toContain(SENTINEL);
  });

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
});
