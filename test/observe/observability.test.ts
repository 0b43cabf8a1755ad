/**
 * Metrics and probes of a real worker (real broker, real PostgreSQL): the counters agree with what
 * was produced, applied and dead-lettered; lag falls to 0; the names follow Prometheus's rules;
 * /readyz turns unready when PostgreSQL stops (a private cluster) and when another worker takes
 * every partition, and ready again when they come back; `oncely run --metrics-port` serves the same.
 */
import { resolve } from 'node:path';
import { serveObservability, workerHealth, workerMetrics } from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import pg from 'pg';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FIXTURES, makeProjectionTables, oncely, producePayments, startOncely } from '../cli/support.js';
import { ordersApp } from '../failure/fixtures/orders-app.js';
import { privatePostgres } from '../failure/support.js';
import { cleanup } from '../support/cleanup.js';
import { createTopic, freshSchema, kafkaClient, randomName } from '../support/fixtures.js';
import { realWorker, until } from '../support/oncely.js';
import { freePort } from '../support/ports.js';

/** `name{labels} value` lines of a scrape, summed per metric name (optionally filtered by a label). */
function sample(text: string, name: string, label?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-z_:][a-z0-9_:]*)(\{[^}]*\})? (\S+)$/i.exec(line);
    if (!m || m[1] !== name) continue;
    if (label && !(m[2] ?? '').includes(label)) continue;
    sum += Number(m[3]);
  }
  return sum;
}

async function get(url: string): Promise<{ status: number; body: string; json: () => { status: string; reasons: string[] } }> {
  const r = await fetch(url);
  const body = await r.text();
  return { status: r.status, body, json: () => JSON.parse(body) };
}

describe('metrics, /healthz and /readyz', () => {
  it('count what happened, follow Prometheus naming, and turn unready without PostgreSQL or without partitions', async () => {
    const db = await privatePostgres();
    const topic = await createTopic(1);
    const schema = freshSchema('obs');
    const group = randomName('obs');
    const admin = new pg.Pool({ connectionString: db.url, max: 1 });
    // Its idle connection dies with the PostgreSQL stop below; the pool then opens a new one.
    admin.on('error', () => {});
    cleanup(() => admin.end());
    await admin.query('create schema app');
    await admin.query('create table app.orders (order_id text not null, qty int not null, "offset" bigint not null)');
    const producer = kafkaClient().producer();
    await producer.connect();
    const qty = Array.from({ length: 20 }, (_, i) => (i % 7 === 3 ? -1 : i + 1));
    await producer.send({ topic, messages: qty.map((q, i) => ({ value: JSON.stringify({ id: `o${i}`, qty: q }) })) });
    await producer.disconnect();
    const deadLetters = qty.filter((q) => q < 0).length;

    const store = new PostgresStore({ connectionString: db.url, schema, poolMax: 4 });
    cleanup(() => store.close());
    await store.migrate();
    const app = ordersApp({ group, topic, table: 'app.orders', fixed: false });
    const w = await realWorker(app, schema, { store, leaseMs: 2000, heartbeatIntervalMs: 300 });
    const registry = new Registry();
    const metrics = workerMetrics(w, { registry });
    const health = workerHealth(w, { probeTimeoutMs: 1000 });
    const server = await serveObservability({ registry, health, port: 0, host: '127.0.0.1' });
    cleanup(async () => {
      health.stop();
      metrics.stop();
      await server.close();
    });
    expect((await get(`${server.url}/readyz`)).status).toBe(503); // not started
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 20n, 'every order handled');

    const scrape = (await get(`${server.url}/metrics`)).body;
    expect(sample(scrape, 'oncely_records_applied_total')).toBe(20 - deadLetters);
    expect(sample(scrape, 'oncely_dead_letters_total', 'reason="non-retriable"')).toBe(deadLetters);
    expect((await admin.query('select count(*)::int as n from app.orders')).rows[0].n).toBe(20 - deadLetters);
    expect(sample(scrape, 'oncely_batches_committed_total')).toBeGreaterThan(0);
    expect(sample(scrape, 'oncely_commit_duration_seconds_count')).toBe(sample(scrape, 'oncely_batches_committed_total'));
    expect(sample(scrape, 'oncely_partition_lag')).toBe(0);
    expect(sample(scrape, 'oncely_partition_next_offset')).toBe(20);
    expect(sample(scrape, 'oncely_partitions_owned')).toBe(1);
    expect(sample(scrape, 'oncely_worker_state', 'state="running"')).toBe(1);
    expect(sample(scrape, 'oncely_claims_total')).toBe(1);
    expect(sample(scrape, 'oncely_transient_errors_total')).toBe(0);
    expect(sample(scrape, 'oncely_fetched_records_total')).toBeGreaterThanOrEqual(20);
    const valueBytes = qty.reduce((a, q, i) => a + Buffer.byteLength(JSON.stringify({ id: `o${i}`, qty: q })), 0);
    expect(sample(scrape, 'oncely_fetched_bytes_total')).toBeGreaterThanOrEqual(valueBytes);
    expect(sample(scrape, 'oncely_fetch_duration_seconds_count')).toBeGreaterThan(0);

    // Prometheus naming: prefix, base units, _total on counters; bounded labels only.
    const types = [...scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1]!, type: m[2]! }));
    expect(types.map((t) => t.name).sort()).toEqual([...metrics.names].sort());
    for (const t of types) {
      expect(t.name).toMatch(/^oncely_[a-z][a-z0-9_]*$/);
      if (t.type === 'counter') expect(t.name).toMatch(/_total$/);
      if (t.type === 'histogram') expect(t.name).toMatch(/_seconds$/);
      if (t.type !== 'counter') expect(t.name).not.toMatch(/_total$/);
    }
    const labels = new Set([...scrape.matchAll(/[{,]([a-z_]+)="/g)].map((m) => m[1]!));
    for (const l of labels)
      expect(['group', 'topic', 'partition', 'reason', 'code', 'action', 'detected_by', 'state', 'le']).toContain(l);

    const live = await get(`${server.url}/healthz`);
    expect(live.status).toBe(200);
    const ready = await get(`${server.url}/readyz`);
    expect(ready.status, ready.body).toBe(200);
    expect(ready.json().status).toBe('ok');
    expect((await get(`${server.url}/nothing`)).status).toBe(404);

    // PostgreSQL stops: not ready, and says why; back: ready again.
    await db.stop();
    const down = await get(`${server.url}/readyz`);
    expect(down.status).toBe(503);
    expect(down.json().reasons.join('\n')).toMatch(/^postgres: /m);
    expect((await get(`${server.url}/healthz`)).status).toBe(200); // alive: it waits the outage out
    await db.start();
    await until(async () => (await get(`${server.url}/readyz`)).status === 200, 'ready again after PostgreSQL is back');
    // Produced during the outage: the worker's first commit after it meets the dead connections.
    const more = kafkaClient().producer();
    await more.connect();
    await more.send({ topic, messages: [{ value: JSON.stringify({ id: 'o20', qty: 1 }) }] });
    await more.disconnect();
    await until(() => w.progress()[0]?.nextOffset === 21n, 'the record produced after the outage applied');

    // Another worker takes the partition by force: this one owns nothing it targets, so not ready.
    const thief = await realWorker(app, schema, {
      store: new PostgresStore({ connectionString: db.url, schema, poolMax: 2 }),
      force: true,
      leaseMs: 2000,
      heartbeatIntervalMs: 300,
    });
    await thief.start();
    await until(() => thief.progress().length === 1, 'the second worker holds the partition');
    await until(async () => (await get(`${server.url}/readyz`)).status === 503, 'unready once its partition is taken');
    expect((await get(`${server.url}/readyz`)).json().reasons.join('\n')).toMatch(/^membership: owns none of its 1 targeted/m);
    // The fence is counted once the worker finds it (an idle worker: by its next lease renewal).
    await until(
      async () => sample((await get(`${server.url}/metrics`)).body, 'oncely_fenced_commits_total', 'action="dropped"') === 1,
      'the takeover counted as a fence',
    );
    const fencedLine = (await get(`${server.url}/metrics`)).body
      .split('\n')
      .find((l) => l.startsWith('oncely_fenced_commits_total{'));
    expect(fencedLine).toMatch(/detected_by="(commit|renewal)"/);
    await thief.stop();
    await until(async () => (await get(`${server.url}/readyz`)).status === 200, 'ready again once the partition is released');
    await w.stop();
    expect((await get(`${server.url}/readyz`)).status).toBe(503);
  });

  it('oncely run --metrics-port serves /metrics, /healthz and /readyz of the running worker', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema('obscli');
    const group = randomName('obscli');
    expect((await oncely(['migrate', '--schema', schema])).code).toBe(0);
    await makeProjectionTables(schema);
    await producePayments(topic, 2, 30);
    const port = await freePort();
    const run = startOncely(
      ['run', resolve(FIXTURES, 'projection-v1.ts'), '--metrics-port', String(port), '--metrics-host', '127.0.0.1'],
      {
        ONCELY_SCHEMA: schema,
        APP_SCHEMA: schema,
        APP_TOPIC: topic,
        APP_GROUP: group,
      },
    );
    cleanup(async () => {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    });
    const url = `http://127.0.0.1:${port}`;
    await until(async () => {
      const r = await fetch(`${url}/metrics`).catch(() => undefined);
      return r !== undefined && sample(await r.text(), 'oncely_records_applied_total') === 60;
    }, 'the CLI worker reports its 60 records');
    const scrape = (await get(`${url}/metrics`)).body;
    expect(sample(scrape, 'oncely_partitions_owned')).toBe(2);
    expect(scrape).toMatch(/^process_cpu_seconds_total /m); // prom-client's process metrics too
    await until(async () => (await get(`${url}/readyz`)).status === 200, 'ready');
    expect((await get(`${url}/healthz`)).status).toBe(200);
    run.child.kill('SIGTERM');
    const result = await run.result;
    expect(result.code, result.stderr).toBe(0);
  });
});
