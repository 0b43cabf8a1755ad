/** Every `oncely dlq` verb through the real binary, against dead letters a real worker wrote. */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTopic, freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { realWorker, until } from '../support/oncely.js';
import { ordersApp } from './fixtures/orders-app.js';
import { FIXTURES, oncely } from './support.js';

let pool: ReturnType<typeof pgPool> | undefined;
const db = () => {
  pool ??= pgPool();
  return pool;
};

describe('oncely dlq (real binary, real database)', () => {
  it('lists, shows, requeues with the fixed handler exactly once, and purges only with --yes', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('dlq');
    const appSchema = freshSchema('orders');
    const table = `${appSchema}.orders`;
    const group = `orders-${topic}`;
    await db().query(`create schema ${appSchema}`);
    await db().query(`create table ${table} (order_id text not null, qty int not null, "offset" bigint not null)`);
    const producer = kafkaClient().producer();
    await producer.connect();
    const orders = [
      { id: 'o1', qty: 2 },
      { id: 'o2', qty: -1 },
      { id: 'o3', qty: 5 },
      { id: 'o4', qty: -3 },
    ];
    await producer.send({
      topic,
      messages: orders.map((o) => ({ key: o.id, value: JSON.stringify(o), headers: { source: 'shop' } })),
    });
    await producer.disconnect();

    const w = await realWorker(ordersApp({ group, topic, table, fixed: false }), schema);
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 4n, 'past every order');
    await w.stop();

    const env = { ONCELY_SCHEMA: schema, ORDERS_GROUP: group, ORDERS_TOPIC: topic, ORDERS_TABLE: table };
    // list
    const list = await oncely(['dlq', 'list', '--group', group, '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as Array<{ id: string; offset: string; errorCode: string; errorMessage: string }>;
    expect(listed.map((d) => [d.offset, d.errorCode])).toEqual([
      ['1', 'NON_RETRIABLE'],
      ['3', 'NON_RETRIABLE'],
    ]);
    const [o2, o4] = listed.map((d) => d.id);
    const table1 = await oncely(['dlq', 'list', '--topic', topic], env);
    expect(table1.stdout).toMatch(/NON_RETRIABLE: order o2: quantity -1 is negative/);
    expect(table1.stdout).toContain('2 dead letter(s)');

    // show: the record as text when printable, headers, error, attempts, failures
    const show = await oncely(['dlq', 'show', o2!], env);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(`record:        ${topic}/0/1`);
    expect(show.stdout).toContain('key:           o2');
    expect(show.stdout).toContain('value:         {"id":"o2","qty":-1}');
    expect(show.stdout).toContain('  source: shop');
    expect(show.stdout).toMatch(/error: +NonRetriableError \[NON_RETRIABLE\]: order o2: quantity -1 is negative/);
    expect(show.stdout).toMatch(/attempts: +1/);
    expect(show.stdout).toMatch(/first failure: \d{4}-/);
    const showJson = JSON.parse((await oncely(['dlq', 'show', o2!, '--json'], env)).stdout);
    expect(showJson.value).toMatchObject({ encoding: 'utf8', base64: Buffer.from('{"id":"o2","qty":-1}').toString('base64') });
    expect((await oncely(['dlq', 'show', '999999999'], env)).code).toBe(1);

    // requeue with the still-buggy handler: fails, says so, exits non-zero, nothing applied, stays dead-lettered
    const again = await oncely(['dlq', 'requeue', o2!, '--app', resolve(FIXTURES, 'orders-buggy.ts')], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/FAILED again, still dead-lettered: NON_RETRIABLE: order o2/);
    expect((await db().query(`select * from ${table} where order_id = 'o2'`)).rowCount).toBe(0);
    const afterFail = await db().query(`select attempts, replayed_at from ${schema}.dead_letters where id = $1`, [o2]);
    expect(afterFail.rows[0]).toEqual({ attempts: 2, replayed_at: null });

    // requeue with the fixed handler: applied once, no longer pending
    const fixed = await oncely(['dlq', 'requeue', o2!, '--app', resolve(FIXTURES, 'orders-fixed.ts')], env);
    expect(fixed.code, fixed.stderr + fixed.stdout).toBe(0);
    expect(fixed.stdout).toContain('1 applied, 0 failed');
    const applied = await db().query(`select order_id, qty, "offset" from ${table} where order_id = 'o2'`);
    expect(applied.rows).toEqual([{ order_id: 'o2', qty: -1, offset: '1' }]);
    // a second requeue of the same id finds nothing pending and applies nothing
    const twice = await oncely(['dlq', 'requeue', o2!, '--app', resolve(FIXTURES, 'orders-fixed.ts')], env);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/No pending dead letter with id/);
    expect((await db().query(`select * from ${table} where order_id = 'o2'`)).rowCount).toBe(1);
    const pending = JSON.parse((await oncely(['dlq', 'list', '--group', group, '--json'], env)).stdout);
    expect(pending.map((d: { id: string }) => d.id)).toEqual([o4]);

    // requeue needs ids or --all --group
    expect((await oncely(['dlq', 'requeue', '--group', group, '--app', resolve(FIXTURES, 'orders-fixed.ts')], env)).code).toBe(2);

    // purge without --yes deletes nothing and says how many
    const dry = await oncely(['dlq', 'purge', '--group', group], env);
    expect(dry.code).toBe(2);
    expect(dry.stderr).toContain('would delete 2 dead letter(s); nothing was deleted. Add --yes');
    expect((await db().query(`select count(*)::int as n from ${schema}.dead_letters`)).rows[0].n).toBe(2);
    const purged = await oncely(['dlq', 'purge', o4!, '--yes', '--json'], env);
    expect(purged.code, purged.stderr).toBe(0);
    expect(JSON.parse(purged.stdout).deleted).toBe(1);
    const rest = await db().query(`select id::text from ${schema}.dead_letters`);
    expect(rest.rows).toEqual([{ id: o2 }]);

    // every operator action is in admin_audit
    const audit = await db().query<{ action: string; group_id: string; details: { result?: string; deleted?: number } }>(
      `select action, group_id, details from ${schema}.admin_audit order by id`,
    );
    expect(audit.rows.map((r) => [r.action, r.details.result ?? r.details.deleted])).toEqual([
      ['dlq.requeue', 'failed'],
      ['dlq.requeue', 'applied'],
      ['dlq.purge', 1],
    ]);
    expect(audit.rows.every((r) => r.group_id === group)).toBe(true);
  });

  it('requeue --all --group applies every pending dead letter of the group and purge --before narrows by age', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('dlqall');
    const appSchema = freshSchema('orders');
    const table = `${appSchema}.orders`;
    const group = `orders-${topic}`;
    await db().query(`create schema ${appSchema}`);
    await db().query(`create table ${table} (order_id text not null, qty int not null, "offset" bigint not null)`);
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [-1, 1, -2, -3].map((qty, i) => ({ value: JSON.stringify({ id: `o${i}`, qty }) })),
    });
    await producer.disconnect();
    const w = await realWorker(ordersApp({ group, topic, table, fixed: false }), schema);
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 4n, 'past every order');
    await w.stop();

    const env = { ONCELY_SCHEMA: schema, ORDERS_GROUP: group, ORDERS_TOPIC: topic, ORDERS_TABLE: table };
    const none = await oncely(['dlq', 'purge', '--group', group, '--before', '2000-01-01T00:00:00Z', '--yes'], env);
    expect(none.stdout).toContain('deleted 0 dead letter(s)');
    const all = await oncely(
      ['dlq', 'requeue', '--all', '--group', group, '--app', resolve(FIXTURES, 'orders-fixed.ts'), '--json'],
      env,
    );
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({ applied: 3, failed: 0 });
    const rows = await db().query(`select order_id, count(*)::int as n from ${table} group by order_id order by order_id`);
    expect(rows.rows).toEqual(['o0', 'o1', 'o2', 'o3'].map((order_id) => ({ order_id, n: 1 })));
  });

  it('orders dead letters by id as numbers: --limit takes the oldest, requeue --all applies them in id order', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('dlqord');
    const appSchema = freshSchema('ordord');
    const table = `${appSchema}.orders`;
    const group = `orders-${topic}`;
    await db().query(`create schema ${appSchema}`);
    await db().query(`create table ${table} (seq bigserial, order_id text not null, qty int not null, "offset" bigint not null)`);
    const producer = kafkaClient().producer();
    await producer.connect();
    // Twelve refunds (negative quantities): the buggy handler dead-letters each, ids 1..12.
    await producer.send({
      topic,
      messages: Array.from({ length: 12 }, (_, i) => ({ value: JSON.stringify({ id: `o${i}`, qty: -(i + 1) }) })),
    });
    await producer.disconnect();
    // Twelve dead letters in a row: the circuit breaker (default 10) is turned off for this one.
    const w = await realWorker(ordersApp({ group, topic, table, fixed: false }), schema, { maxConsecutiveDeadLetters: 0 });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 12n, 'past every order');
    await w.stop();

    const env = { ONCELY_SCHEMA: schema, ORDERS_GROUP: group, ORDERS_TOPIC: topic, ORDERS_TABLE: table };
    const ids = (stdout: string) => (JSON.parse(stdout) as Array<{ id: string }>).map((d) => Number(d.id));
    const first = await oncely(['dlq', 'list', '--group', group, '--limit', '3', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(ids(first.stdout)).toEqual([1, 2, 3]); // as text they would be 1, 10, 11
    const all = await oncely(['dlq', 'list', '--group', group, '--json'], env);
    expect(ids(all.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));

    const requeue = await oncely(
      ['dlq', 'requeue', '--all', '--group', group, '--app', resolve(FIXTURES, 'orders-fixed.ts'), '--json'],
      env,
    );
    expect(requeue.code, requeue.stderr).toBe(0);
    const out = JSON.parse(requeue.stdout) as { applied: number; outcomes: Array<{ id: string }> };
    expect(out.applied).toBe(12);
    expect(out.outcomes.map((o) => Number(o.id))).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    // Applied in the records' order, as they were dead-lettered.
    const applied = await db().query(`select "offset"::int as o from ${table} order by seq`);
    expect(applied.rows.map((r) => r.o)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });
});
