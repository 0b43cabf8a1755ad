/**
 * `oncely explain` through the real binary, against the history a real worker, a live rewind and a
 * dead letter with its requeue left in the tables: applied once, applied again after a rewind (and
 * the rewind named as the reason), dead-lettered, requeued, not reached.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ordersApp } from '../failure/fixtures/orders-app.js';
import { createTopic, freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { realWorker, until } from '../support/oncely.js';
import { oncely } from './support.js';

const FAILURE_FIXTURES = resolve(import.meta.dirname, '../failure/fixtures');

interface History {
  state: string;
  timesApplied: number;
  pendingDeadLetters: string[];
  position: { nextOffset: string } | null;
  events: Array<{
    kind: string;
    batch?: { id: string; fromOffset: string; toOffset: string };
    auditId?: string;
    deadLetterId?: string;
  }>;
}

describe('oncely explain (real binary, real database)', () => {
  it('tells applied once, applied again after a rewind, dead-lettered, requeued and not reached', async () => {
    const pool = pgPool();
    const topic = await createTopic(1);
    const schema = freshSchema('explain');
    const appSchema = freshSchema('orders');
    const table = `${appSchema}.orders`;
    const group = `orders-${topic}`;
    await pool.query(`create schema ${appSchema}`);
    await pool.query(`create table ${table} (order_id text not null, qty int not null, "offset" bigint not null)`);
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [2, -1, 5].map((qty, i) => ({ key: `o${i}`, value: JSON.stringify({ id: `o${i}`, qty }) })),
    });
    await producer.disconnect();
    const env = { ONCELY_SCHEMA: schema, ORDERS_GROUP: group, ORDERS_TOPIC: topic, ORDERS_TABLE: table };
    const explain = async (offset: number): Promise<History> => {
      const r = await oncely(['explain', `${topic}/0/${offset}`, '--group', group, '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as History;
    };
    const runToEnd = async () => {
      const w = await realWorker(ordersApp({ group, topic, table, fixed: false }), schema);
      await w.start();
      await until(() => w.progress()[0]?.nextOffset === 3n, 'past every order');
      await w.stop();
    };

    await runToEnd();
    const first = await explain(0);
    expect(first.state).toBe('applied');
    expect(first.timesApplied).toBe(1);
    expect(first.events.map((e) => e.kind)).toEqual(['applied']);
    const batch = first.events[0]!.batch!;
    const logged = await pool.query(`select from_offset::text, to_offset::text from ${schema}.offset_log where id = $1`, [
      batch.id,
    ]);
    expect(logged.rows[0]).toEqual({ from_offset: batch.fromOffset, to_offset: batch.toOffset });

    const failed = await explain(1);
    expect(failed.state).toBe('dead-lettered');
    expect(failed.timesApplied).toBe(0);
    expect(failed.events.map((e) => e.kind)).toEqual(['dead-lettered']);
    expect(failed.pendingDeadLetters).toHaveLength(1);
    const people = await oncely(['explain', `${topic}/0/1`, '--group', group], env);
    expect(people.stdout).toContain(`record:    ${topic}/0/1 in group ${group}`);
    expect(people.stdout).toMatch(/verdict: +not applied: dead-lettered \(\d+\); `oncely dlq show \d+` shows why/);

    // Rewind to 0 and run again: offset 0 is applied a second time, and the rewind says why.
    const reset = await oncely(['offsets', 'reset', '--group', group, '--to-offset', '0', '--execute', '--actor', 'alice'], env);
    expect(reset.code, reset.stderr).toBe(0);
    await runToEnd();
    const twice = await explain(0);
    expect(twice.state).toBe('applied');
    expect(twice.timesApplied).toBe(2);
    expect(twice.events.map((e) => e.kind)).toEqual(['applied', 'rewound', 'applied']);
    const audit = await pool.query(`select id::text, actor from ${schema}.admin_audit where action = 'offsets.reset'`);
    expect(twice.events[1]!.auditId).toBe(audit.rows[0].id);
    const text = await oncely(['explain', `${topic}/0/0`, '--group', group], env);
    expect(text.stdout).toMatch(/verdict: +applied 2 times/);
    expect(text.stdout).toMatch(
      /rewound +offsets\.reset by alice \(--to-offset 0\): position 3 → 0, so the record is applied again/,
    );

    // Offset 1 failed on both passes; requeue one of its dead letters with the fixed handler.
    const again = await explain(1);
    expect(again.events.map((e) => e.kind)).toEqual(['dead-lettered', 'rewound', 'dead-lettered']);
    expect(again.pendingDeadLetters).toHaveLength(2);
    const requeue = await oncely(
      ['dlq', 'requeue', again.pendingDeadLetters[1]!, '--app', resolve(FAILURE_FIXTURES, 'orders-fixed.ts')],
      env,
    );
    expect(requeue.code, requeue.stderr + requeue.stdout).toBe(0);
    const requeued = await explain(1);
    expect(requeued.state).toBe('applied');
    expect(requeued.timesApplied).toBe(1);
    expect(requeued.events.map((e) => e.kind)).toEqual(['dead-lettered', 'rewound', 'dead-lettered', 'requeued']);
    expect(requeued.events[3]!.deadLetterId).toBe(again.pendingDeadLetters[1]);
    expect(requeued.pendingDeadLetters).toEqual([again.pendingDeadLetters[0]]);
    // What explain says is what the table holds: o0 twice (the rewind), o1 once (the requeue), o2 twice.
    const rows = await pool.query(`select order_id, count(*)::int as n from ${table} group by order_id order by order_id`);
    expect(rows.rows).toEqual([
      { order_id: 'o0', n: 2 },
      { order_id: 'o1', n: 1 },
      { order_id: 'o2', n: 2 },
    ]);

    const ahead = await explain(7);
    expect(ahead.state).toBe('not-reached');
    expect(ahead.position?.nextOffset).toBe('3');
    const other = await oncely(['explain', `${topic}/5/0`, '--group', group, '--json'], env);
    expect(JSON.parse(other.stdout).state).toBe('unknown-partition');

    // A reset to the log's end moves past records no handler saw: they read as skipped, with the reset.
    const more = kafkaClient().producer();
    await more.connect();
    await more.send({ topic, messages: [{ key: 'o3', value: JSON.stringify({ id: 'o3', qty: 1 }) }] });
    await more.disconnect();
    const skip = await oncely(['offsets', 'reset', '--group', group, '--to-latest', '--execute', '--actor', 'bob'], env);
    expect(skip.code, skip.stderr).toBe(0);
    const skipped = await explain(3);
    expect(skipped.state).toBe('skipped');
    expect(skipped.timesApplied).toBe(0);
    expect(skipped.events.map((e) => e.kind)).toEqual(['skipped']);
    expect((await pool.query(`select count(*)::int as n from ${table} where order_id = 'o3'`)).rows[0].n).toBe(0);

    // Bad usage exits 2 before anything opens.
    const bad = await oncely(['explain', `${topic}:0:1`, '--group', group], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('<topic>/<partition>/<offset>');
    const noGroup = await oncely(['explain', `${topic}/0/1`], { ...env, ONCELY_GROUP: '' });
    expect(noGroup.code).toBe(2);
    expect(noGroup.stderr).toMatch(/--group/);
  });

  it("asks Kafka whether the offset holds a data record: transaction markers and aborted records are 'no-record'", async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('explain');
    const appSchema = freshSchema('orders');
    const table = `${appSchema}.orders`;
    const group = `orders-${topic}`;
    const pool = pgPool();
    await pool.query(`create schema ${appSchema}`);
    await pool.query(`create table ${table} (order_id text not null, qty int not null, "offset" bigint not null)`);
    const order = (id: string) => ({ key: id, value: JSON.stringify({ id, qty: 1 }) });
    // Offsets: 0, 1 committed in a transaction, 2 its commit marker; 3 aborted, 4 its abort marker; 5 plain.
    const producer = kafkaClient().producer({ transactionalId: `explain-${topic}`, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      const committed = await producer.transaction();
      await committed.send({ topic, messages: [order('t0'), order('t1')] });
      await committed.commit();
      const aborted = await producer.transaction();
      await aborted.send({ topic, messages: [order('x0')] });
      await aborted.abort();
    } finally {
      await producer.disconnect();
    }
    // The coordinator writes a transaction's marker after EndTxn has returned: p0 waits for the abort
    // marker, or it could land before it at offset 4.
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      await until(async () => (await admin.fetchTopicOffsets(topic))[0]?.high === '5', 'the abort marker at offset 4');
    } finally {
      await admin.disconnect();
    }
    const plain = kafkaClient().producer();
    await plain.connect();
    await plain.send({ topic, messages: [order('p0')] });
    await plain.disconnect();
    const env = { ONCELY_SCHEMA: schema, ORDERS_GROUP: group, ORDERS_TOPIC: topic, ORDERS_TABLE: table };
    const w = await realWorker(ordersApp({ group, topic, table, fixed: false }), schema);
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 6n, 'past every offset');
    await w.stop();
    expect((await pool.query(`select order_id from ${table} order by "offset"`)).rows.map((r) => r.order_id)).toEqual([
      't0',
      't1',
      'p0',
    ]);

    const explain = async (offset: number) => {
      const r = await oncely(['explain', `${topic}/0/${offset}`, '--group', group, '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as History & { inKafka: { kind: string; nextRecordOffset?: string | null } };
    };
    const record = await explain(1);
    expect(record.state).toBe('applied');
    expect(record.inKafka.kind).toBe('record');
    for (const [offset, next] of [
      [2, '5'],
      [3, '5'],
      [4, '5'],
    ] as const) {
      const gap = await explain(offset);
      expect(gap.state, `offset ${offset}`).toBe('no-record');
      expect(gap.timesApplied).toBe(0);
      expect(gap.inKafka).toEqual({ kind: 'no-record', nextRecordOffset: next });
      expect(gap.events.map((e) => e.kind)).toEqual(['passed-over']);
    }
    const ahead = await explain(9);
    expect(ahead.state).toBe('not-reached');
    expect(ahead.inKafka.kind).toBe('not-yet');
    const people = await oncely(['explain', `${topic}/0/2`, '--group', group], env);
    expect(people.stdout).toMatch(/verdict: +nothing to apply: Kafka holds no data record at this offset/);
    expect(people.stdout).toMatch(/in kafka: +no data record at this offset \(the next one is at 5\)/);

    // Without brokers the store answers alone, and says Kafka was not asked.
    const alone = await oncely(['explain', `${topic}/0/2`, '--group', group, '--json'], {
      ...env,
      KAFKA_BROKERS: '',
      ONCELY_BROKERS: '',
    });
    expect(alone.code, alone.stderr).toBe(0);
    const storeOnly = JSON.parse(alone.stdout) as History & { inKafka: { kind: string; reason: string } };
    expect(storeOnly.state).toBe('applied');
    expect(storeOnly.inKafka.kind).toBe('unknown');
    expect(storeOnly.inKafka.reason).toMatch(/no brokers/);

    // A partition the topic does not have is named as such, not as a leader the brokers lack.
    const nowhere = await oncely(['explain', `${topic}/7/0`, '--group', group, '--json'], env);
    expect(nowhere.code, nowhere.stderr).toBe(0);
    const missing = JSON.parse(nowhere.stdout) as History & { inKafka: { kind: string; reason: string } };
    expect(missing.state).toBe('unknown-partition');
    expect(missing.inKafka).toEqual({ kind: 'unknown', reason: `topic ${topic} has no partition 7 (it has 1: 0)` });
  });
});
