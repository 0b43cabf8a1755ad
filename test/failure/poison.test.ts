import { defineApp, json } from '@oncely/core';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { createTopic, freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { realWorker, until } from '../support/oncely.js';

interface Item {
  i: number;
}

async function makeTable(schema: string): Promise<string> {
  const pool = db();
  await pool.query(`create schema if not exists ${schema}`);
  await pool.query(`create table ${schema}.seen (id bigserial primary key, partition int, "offset" bigint, i int)`);
  return `${schema}.seen`;
}

/** Appends every record; fails (with a retriable error) on the values in `poison`. */
function app(topic: string, group: string, table: string, poison: Set<number>, onExhausted?: 'dead-letter' | 'stop-partition') {
  return defineApp<Knex.Transaction>({ group }).handle(
    { topic, codec: json<Item>(), retry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 50, onExhausted } },
    async (msg, ctx) => {
      await ctx.tx(table).insert({ partition: msg.partition, offset: msg.offset.toString(), i: msg.value.i });
      if (poison.has(msg.value.i)) throw new Error(`item ${msg.value.i} is poison`);
    },
  );
}

let pool: ReturnType<typeof pgPool> | undefined;
const db = () => {
  pool ??= pgPool();
  return pool;
};

describe('a poison record among good ones (real broker and database)', () => {
  it('applies the good ones once, dead-letters the poison one once with the record intact, and moves on', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('poison');
    const table = await makeTable(freshSchema('app'));
    const producer = kafkaClient().producer();
    await producer.connect();
    // Recent timestamps: the broker's retention (7 days) would delete older records under the worker.
    const t0 = Date.now() - 60_000;
    await producer.send({
      topic,
      messages: Array.from({ length: 20 }, (_, i) => ({
        key: `k-${i}`,
        value: JSON.stringify({ i }),
        headers: i === 7 ? { trace: 'abc-7', bin: Buffer.from([0, 255, 1]) } : {},
        timestamp: String(t0 + i),
      })),
    });
    await producer.disconnect();

    const dead: Array<{ offset: bigint; attempts: number; reason: string }> = [];
    const group = `g-${topic}`;
    const w = await realWorker(app(topic, group, table, new Set([7])), schema, {
      retryAttempts: 3,
    });
    w.on('dead-letter', (d) => {
      dead.push({ offset: d.offset, attempts: d.attempts, reason: d.reason });
    });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 20n, 'the partition past every record');
    // Applied and dead-lettered are counted apart: 19 applied, 1 set aside.
    expect(w.progress()[0]).toMatchObject({ committedRecords: 19, deadLetteredRecords: 1 });
    await w.stop();

    const rows = (await db().query<{ i: number; n: string }>(`select i, count(*) as n from ${table} group by i order by i`)).rows;
    expect(rows.map((r) => r.i)).toEqual([...Array(20).keys()].filter((i) => i !== 7));
    expect(rows.every((r) => r.n === '1')).toBe(true);
    expect(dead).toEqual([{ offset: 7n, attempts: 3, reason: 'exhausted' }]);

    const dl = await db().query(`select * from ${schema}.dead_letters`);
    expect(dl.rows).toHaveLength(1);
    const d = dl.rows[0];
    expect(d).toMatchObject({ group_id: group, topic, partition: 0, offset: '7', attempts: 3, error_name: 'Error' });
    expect(d.key).toEqual(Buffer.from('k-7'));
    expect(d.value).toEqual(Buffer.from(JSON.stringify({ i: 7 })));
    expect(d.headers).toEqual([
      { name: 'trace', value: Buffer.from('abc-7').toString('base64') },
      { name: 'bin', value: Buffer.from([0, 255, 1]).toString('base64') },
    ]);
    expect(d.error_message).toContain('item 7 is poison');
    expect(d.error_stack).toContain('poison.test.ts');
    expect(new Date(d.record_timestamp).getTime()).toBe(t0 + 7);
    expect(new Date(d.last_failed_at).getTime()).toBeGreaterThanOrEqual(new Date(d.first_failed_at).getTime());
  });

  it("with onExhausted 'stop-partition' halts only that partition at the poison record; the others continue", async () => {
    const topic = await createTopic(2);
    const schema = freshSchema('stop');
    const table = await makeTable(freshSchema('app'));
    const producer = kafkaClient().producer();
    await producer.connect();
    for (const partition of [0, 1])
      await producer.send({
        topic,
        messages: Array.from({ length: 10 }, (_, j) => ({ partition, value: JSON.stringify({ i: partition * 100 + j }) })),
      });
    await producer.disconnect();

    const stopped: Array<{ partition: number; offset: bigint }> = [];
    const w = await realWorker(app(topic, `g-${topic}`, table, new Set([4]), 'stop-partition'), schema, {});
    w.on('partition-stopped', (s) => {
      stopped.push({ partition: s.partition, offset: s.offset });
    });
    await w.start();
    await until(() => {
      const p = w.progress();
      return p.find((x) => x.partition === 1)?.nextOffset === 10n && p.find((x) => x.partition === 0)?.stopped !== undefined;
    }, 'partition 1 done and partition 0 stopped');
    const p0 = w.progress().find((x) => x.partition === 0)!;
    expect(p0.nextOffset).toBe(4n);
    expect(stopped).toEqual([{ partition: 0, offset: 4n }]);
    expect(w.state).toBe('running');
    await w.stop();

    const rows = (await db().query<{ i: number }>(`select i from ${table} order by partition, "offset"`)).rows.map((r) => r.i);
    expect(rows).toEqual([0, 1, 2, 3, ...Array.from({ length: 10 }, (_, j) => 100 + j)]);
    expect((await db().query(`select count(*)::int as n from ${schema}.dead_letters`)).rows[0].n).toBe(0);
    const pos = await db().query<{ partition: number; next_offset: string }>(
      `select partition, next_offset from ${schema}.partitions order by partition`,
    );
    expect(pos.rows).toEqual([
      { partition: 0, next_offset: '4' },
      { partition: 1, next_offset: '10' },
    ]);
  });
});
