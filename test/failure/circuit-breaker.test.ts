/**
 * The circuit breaker against the real broker and database: a handler that fails on every record
 * (a deploy ahead of the producers it expects) stops its partition after maxConsecutiveDeadLetters
 * dead letters instead of draining the topic into the dead letters.
 */
import { defineApp, json } from '@oncely/core';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { createTopic, freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { realWorker, until } from '../support/oncely.js';

let pool: ReturnType<typeof pgPool> | undefined;
const db = () => {
  pool ??= pgPool();
  return pool;
};

describe('circuit breaker (a handler that fails on every record)', () => {
  it('stops the partition after N dead letters in a row, at the record after the N-th; the other partition goes on', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema('circuit');
    const appSchema = freshSchema('circuitapp');
    await db().query(`create schema ${appSchema}`);
    await db().query(`create table ${appSchema}.seen (partition int not null, i int not null)`);
    const producer = kafkaClient().producer();
    await producer.connect();
    for (const partition of [0, 1])
      await producer.send({
        topic,
        messages: Array.from({ length: 40 }, (_, i) => ({
          partition,
          // Partition 0's producers were not upgraded: the new handler rejects each of their records.
          value: JSON.stringify(partition === 0 ? { i } : { i, currency: 'EUR' }),
        })),
      });
    await producer.disconnect();

    const app = defineApp<Knex.Transaction>({ group: `g-${topic}` }).handle(
      { topic, codec: json<{ i: number; currency?: string }>(), retry: { attempts: 2, initialDelayMs: 5, maxDelayMs: 10 } },
      async (msg, ctx) => {
        if (!msg.value.currency) throw new Error(`record ${msg.value.i} has no currency (handler expects schema v2)`);
        await ctx.tx(`${appSchema}.seen`).insert({ partition: msg.partition, i: msg.value.i });
      },
    );
    const limit = 6;
    const stops: Array<{ partition: number; offset: bigint; code: string | undefined }> = [];
    const w = await realWorker(app, schema, { maxConsecutiveDeadLetters: limit });
    w.on('partition-stopped', (s) => {
      stops.push({ partition: s.partition, offset: s.offset, code: (s.error as { code?: string }).code });
    });
    await w.start();
    await until(() => w.progress().find((p) => p.partition === 0)?.stopped !== undefined, 'partition 0 stopped');
    await until(() => w.progress().find((p) => p.partition === 1)?.nextOffset === 40n, 'partition 1 applied');
    const p0 = w.progress().find((p) => p.partition === 0)!;
    const p1 = w.progress().find((p) => p.partition === 1)!;
    expect(w.state).toBe('running');
    await w.stop();

    expect(p0).toMatchObject({ nextOffset: BigInt(limit), deadLetteredRecords: limit, committedRecords: 0 });
    expect(p0.stopped).toMatchObject({ offset: BigInt(limit), code: 'CIRCUIT_OPEN' });
    expect(p0.stopped?.error).toMatch(/6 records of .*\/0 were dead-lettered in a row \(maxConsecutiveDeadLetters 6\)/);
    expect(p0.stopped?.error).toMatch(/has no currency/);
    expect(p0.stopped?.error).toMatch(/oncely dlq requeue/);
    expect(p1).toMatchObject({ nextOffset: 40n, deadLetteredRecords: 0, committedRecords: 40 });
    expect(p1.stopped).toBeUndefined();
    expect(stops).toEqual([{ partition: 0, offset: BigInt(limit), code: 'CIRCUIT_OPEN' }]);

    const dl = await db().query<{ partition: number; offset: string }>(
      `select partition, "offset"::text as offset from ${schema}.dead_letters order by "offset"`,
    );
    expect(dl.rows).toEqual(Array.from({ length: limit }, (_, i) => ({ partition: 0, offset: String(i) })));
    // Stored: not past the record after the N-th dead letter.
    const pos = await db().query<{ next_offset: string }>(
      `select next_offset::text from ${schema}.partitions where partition = 0`,
    );
    expect(pos.rows).toEqual([{ next_offset: String(limit) }]);
    expect((await db().query(`select partition, count(*)::int as n from ${appSchema}.seen group by partition`)).rows).toEqual([
      { partition: 1, n: 40 },
    ]);
  });
});
