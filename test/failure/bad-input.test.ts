/**
 * Bad input of every class gets a coded error that says what was wrong and what to do, and loses
 * nothing: undecodable records are dead-lettered (reason decode) and listed by `oncely dlq list`;
 * configuration mistakes fail at start, before anything is read or written.
 */
import { createWorker, defineApp, json, KafkajsPartitionReader, OncelyError, silentLogger } from '@oncely/core';
import { copyRows, PostgresStore } from '@oncely/postgres-offsets';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { brokers, createTopic, databaseUrl, freshSchema, kafkaClient, pgPool, randomName } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';
import { oncely } from './support.js';

let pool: ReturnType<typeof pgPool> | undefined;
const db = () => {
  pool ??= pgPool();
  return pool;
};

async function failure(p: Promise<unknown>): Promise<OncelyError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(OncelyError);
  return e as OncelyError;
}

/** Offsets 0-4: {"n":1} … {"n":5}, offset 2 malformed ('{"n":3'). */
async function produceFive(topic: string): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  await producer.send({
    topic,
    messages: ['{"n":1}', '{"n":2}', '{"n":3', '{"n":4}', '{"n":5}'].map((value) => ({ value })),
  });
  await producer.disconnect();
}

describe('bad input', () => {
  it('malformed JSON, an oversized value and a null value are dead-lettered (decode) with a message that says what to do', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('bad');
    const group = `bad-${topic}`;
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        { value: '{"n":1}' },
        { value: '{"n":2' }, // malformed
        { value: JSON.stringify({ n: 3, pad: 'x'.repeat(500) }) }, // over maxBytes
        { key: 'k4', value: null }, // tombstone
        { value: '{"n":5}' },
      ],
    });
    await producer.disconnect();
    const applied: number[] = [];
    const decode: bigint[] = [];
    const app = defineApp<Knex.Transaction>({ group }).handle(
      { topic, codec: json<{ n: number }>({ maxBytes: 200 }) },
      async (m) => {
        applied.push(m.value.n);
      },
    );
    const w = await realWorker(app, schema, {});
    w.on('dead-letter', (d) => {
      if (d.reason === 'decode') decode.push(d.offset);
    });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 5n, 'past every record');
    await w.stop();
    expect(applied).toEqual([1, 5]);
    expect(decode).toEqual([1n, 2n, 3n]);

    const list = await oncely(['dlq', 'list', '--group', group, '--json'], { ONCELY_SCHEMA: schema });
    expect(list.code, list.stderr).toBe(0);
    const rows = JSON.parse(list.stdout) as Array<{
      offset: string;
      errorCode: string;
      errorMessage: string;
      attempts: number;
      value: { base64: string | null };
    }>;
    expect(rows.map((r) => [r.offset, r.errorCode])).toEqual([
      ['1', 'CODEC_FAILED'],
      ['2', 'CODEC_FAILED'],
      ['3', 'CODEC_FAILED'],
    ]);
    const [malformed, big, tombstone] = rows;
    expect(malformed!.errorMessage).toMatch(/not valid JSON .*fix the producer/);
    expect(Buffer.from(malformed!.value.base64!, 'base64').toString()).toBe('{"n":2');
    expect(big!.errorMessage).toMatch(/exceeds maxBytes 200; .*raise json\(\{ maxBytes \}\)/);
    expect(tombstone!.errorMessage).toMatch(/null value \(a tombstone\); pass json\(\{ allowNull: true \}\)/);
    expect(tombstone!.value.base64).toBeNull();
    // Decode failures are never retried: one attempt each.
    expect(rows.map((r) => r.attempts)).toEqual([1, 1, 1]);
  });

  it('a lazy json codec parses a value when the handler reads it: a malformed one fails that read, named, and is dead-lettered (decode) while the rest of its batch commits', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('lazy');
    const group = `lazy-${topic}`;
    await produceFive(topic);
    const committed: number[][] = [];
    const decode: bigint[] = [];
    let calls = 0;
    const app = defineApp<Knex.Transaction>({ group }).handleBatch(
      { topic, codec: json<{ n: number }>({ lazy: true }) },
      async (batch, ctx) => {
        calls++;
        const values = batch.messages.map((m) => m.value.n);
        await ctx.tx.raw('select 1');
        committed.push(values);
      },
    );
    const w = await realWorker(app, schema, { batchMaxRecords: 5 });
    w.on('dead-letter', (d) => {
      if (d.reason === 'decode') decode.push(d.offset);
    });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 5n, 'past every record');
    await w.stop();
    // The read of offset 2 failed naming it: 0-1 commit, 2 is dead-lettered at once, 3-4 follow.
    // Three handler calls (0-4 failing, 0-1, 3-4): bisecting the unnamed failure would take four.
    expect(decode).toEqual([2n]);
    expect(committed).toEqual([
      [1, 2],
      [4, 5],
    ]);
    expect(calls).toBe(3);
    const { rows } = await db().query<{ offset: string; error_code: string; error_message: string; attempts: number }>(
      `select "offset"::text, error_code, error_message, attempts from ${schema}.dead_letters`,
    );
    expect(rows.map((r) => [r.offset, r.error_code, r.attempts])).toEqual([['2', 'CODEC_FAILED', 1]]);
    expect(rows[0]!.error_message).toMatch(/json: value at offset 2 is not valid JSON/);
  });

  it('a lazy json codec whose handler copies the bytes to a jsonb column leaves the check to PostgreSQL: a malformed value is dead-lettered, every good row lands', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('lazyjsonb');
    const group = `lazyjsonb-${topic}`;
    await produceFive(topic);
    const decoded: bigint[] = [];
    const codec = json<{ n: number }>({ lazy: true });
    const counting: typeof codec = {
      ...codec,
      decode(value, record) {
        decoded.push(record.offset);
        return codec.decode(value, record);
      },
    };
    const dead: { offset: bigint; reason: string }[] = [];
    const app = defineApp<Knex.Transaction>({ group }).handleBatch({ topic, codec: counting }, async (batch, ctx) => {
      await copyRows(
        ctx.tx,
        `${schema}.docs`,
        ['offset', 'doc'],
        batch.messages.map((m) => [m.offset, m.raw.value]),
        { format: 'binary' },
      );
    });
    const w = await realWorker(app, schema, { batchMaxRecords: 5, retryAttempts: 2 });
    await db().query(`create table ${schema}.docs ("offset" bigint primary key, doc jsonb not null)`);
    w.on('dead-letter', (d) => dead.push({ offset: d.offset, reason: d.reason }));
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 5n, 'past every record');
    await w.stop();
    expect(decoded).toEqual([]); // never read, never parsed
    const { rows } = await db().query<{ offset: string; n: number }>(
      `select "offset"::text, (doc->>'n')::int as n from ${schema}.docs order by "offset"`,
    );
    expect(rows).toEqual([
      { offset: '0', n: 1 },
      { offset: '1', n: 2 },
      { offset: '3', n: 4 },
      { offset: '4', n: 5 },
    ]);
    expect(dead.map((d) => d.offset)).toEqual([2n]);
    const letters = await db().query<{ error_code: string; error_message: string }>(
      `select error_code, error_message from ${schema}.dead_letters`,
    );
    expect(letters.rows).toHaveLength(1);
    expect(letters.rows[0]!.error_message).toMatch(/json/i);
  });

  it('invalid UTF-8 in a JSON value is dead-lettered (decode) with its raw bytes, as string() does, never applied with U+FFFD', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('utf');
    const group = `utf-${topic}`;
    // Latin-1 "é" (0xe9) where UTF-8 was expected, and an overlong encoding of "/" (0xc0 0xaf).
    const latin1 = Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const overlong = Buffer.concat([Buffer.from('{"path":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]);
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [{ value: '{"name":"ok"}' }, { value: latin1 }, { value: overlong }, { value: '{"name":"café"}' }],
    });
    await producer.disconnect();
    const applied: unknown[] = [];
    const decode: bigint[] = [];
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json<Record<string, string>>() }, async (m) => {
      applied.push(m.value);
    });
    const w = await realWorker(app, schema);
    w.on('dead-letter', (d) => {
      if (d.reason === 'decode') decode.push(d.offset);
    });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 4n, 'past every record');
    await w.stop();
    expect(applied).toEqual([{ name: 'ok' }, { name: 'café' }]);
    expect(decode).toEqual([1n, 2n]);
    const { rows } = await db().query<{ offset: string; error_code: string; error_message: string; value: Buffer }>(
      `select "offset"::text, error_code, error_message, value from ${schema}.dead_letters order by "offset"`,
    );
    expect(rows.map((r) => [r.offset, r.error_code])).toEqual([
      ['1', 'CODEC_FAILED'],
      ['2', 'CODEC_FAILED'],
    ]);
    expect(rows[0]!.error_message).toMatch(/json: value at offset 1 is not valid UTF-8/);
    expect(rows[0]!.value.equals(latin1)).toBe(true);
    expect(rows[1]!.value.equals(overlong)).toBe(true);
  });

  it('an unknown topic fails worker start with TOPIC_NOT_FOUND naming the topic, and writes nothing', async () => {
    const schema = freshSchema('nt');
    const missing = randomName('no-such-topic');
    const app = defineApp<Knex.Transaction>({ group: 'nt' }).handle({ topic: missing, codec: json() }, async () => {});
    const w = await realWorker(app, schema);
    const e = await failure(w.start());
    expect(e.code).toBe('TOPIC_NOT_FOUND');
    expect(e.message).toContain(JSON.stringify(missing));
    expect(e.message).toMatch(/create it .* or fix the topic name/);
    expect(w.state).toBe('failed');
    expect((await db().query(`select count(*)::int as n from ${schema}.partitions`)).rows[0].n).toBe(0);
  });

  it('a group with no handlers and invalid options are CONFIG_INVALID errors naming the option and the fix', async () => {
    const store = await pgStore(freshSchema('cfg'));
    const reader = new KafkajsPartitionReader({ brokers: brokers(), logger: silentLogger });
    const empty = await failure((async () => createWorker(defineApp({ group: 'empty' }), { store, reader }).start())());
    expect(empty.code).toBe('CONFIG_INVALID');
    expect(empty.message).toMatch(/App 'empty' has no handlers: add one with \.handle\(\)/);

    const app = defineApp<Knex.Transaction>({ group: 'cfg' }).handle({ topic: 't', codec: json() }, async () => {});
    for (const [options, pattern] of [
      [{ batchMaxRecords: 0 }, /batchMaxRecords/],
      [{ leaseMs: 10 }, /leaseMs/],
      [{ onExhausted: 'explode' }, /onExhausted/],
      [{ crashBudget: -1 }, /crashBudget/],
      [{ onCrashLoop: 'skip' }, /onCrashLoop must be 'stop-partition' or 'dead-letter'/],
      [{ maxConsecutiveDeadLetters: -1 }, /maxConsecutiveDeadLetters/],
      // Past 2^31-1 ms Node's timers fire after 1 ms: a back-off that never waits, a drain cut at once.
      [{ retryMaxDelayMs: 3_000_000_000 }, /retryMaxDelayMs must be an integer from 0 to 2147483647; got 3000000000/],
      [{ drainTimeoutMs: 3_000_000_000 }, /drainTimeoutMs must be an integer from 0 to 2147483647/],
    ] as const) {
      const e = await failure((async () => createWorker(app, { store, reader, ...(options as object) }))());
      expect(e.code).toBe('CONFIG_INVALID');
      expect(e.message).toMatch(pattern);
    }
    // A handler's own retry policy is checked where the handler is defined, naming its topic.
    for (const [retry, pattern] of [
      [{ attempts: 0 }, /Handler for 'r': retry\.attempts must be an integer from 1 to 1000000; got 0/],
      [{ attempts: Number.POSITIVE_INFINITY }, /retry\.attempts must be an integer/],
      [{ initialDelayMs: -100 }, /retry\.initialDelayMs must be an integer from 0/],
      [{ maxDelayMs: 3_000_000_000 }, /retry\.maxDelayMs must be an integer from 0 to 2147483647/],
      [{ initialDelayMs: 500, maxDelayMs: 100 }, /retry\.maxDelayMs \(100\) must not be below retry\.initialDelayMs \(500\)/],
      [{ onExhausted: 'skip' }, /retry\.onExhausted must be 'dead-letter' or 'stop-partition'/],
      [{ maxConsecutiveDeadLetters: -1 }, /retry\.maxConsecutiveDeadLetters must be an integer from 0/],
    ] as const) {
      const e = await failure(
        (async () =>
          defineApp<Knex.Transaction>({ group: 'cfg' }).handle(
            { topic: 'r', codec: json(), retry: retry as never },
            async () => {},
          ))(),
      );
      expect(e.code).toBe('CONFIG_INVALID');
      expect(e.message).toMatch(pattern);
    }
    const badSchema = await failure(
      (async () => new PostgresStore({ connectionString: databaseUrl(), schema: 'Robert"; drop' }))(),
    );
    expect(badSchema.code).toBe('CONFIG_INVALID');
    expect(badSchema.message).toContain('schema');
    await reader.close();
  });

  it('a database schema from a newer oncely is refused with SCHEMA_TOO_NEW (API and CLI)', async () => {
    const schema = freshSchema('new');
    await pgStore(schema);
    await db().query(`insert into ${schema}.migrations (id, name) values (9999, '9999_from_the_future')`);
    const store = new PostgresStore({ connectionString: databaseUrl(), schema });
    const e = await failure(store.migrate());
    await store.close();
    expect(e.code).toBe('SCHEMA_TOO_NEW');
    expect(e.message).toMatch(new RegExp(`Schema "${schema}" is at migration 9999.*Upgrade @oncely/postgres-offsets`));
    const cli = await oncely(['migrate', '--schema', schema]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/SCHEMA_TOO_NEW: Schema ".*" is at migration 9999/);
  });
});
