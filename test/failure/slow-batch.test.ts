/**
 * A handler that does not settle (an await on something that never answers, a statement that runs
 * for minutes) is not an error and nothing can classify it, but it holds its partition: the worker
 * stays `running`, the lag grows, and nothing said so. The slow-batch watch reports it (real broker
 * and database): the log names the batch and the record, progress() and the metrics show how long
 * the batch has been open, and once the handler settles every record is applied exactly once.
 */
import { resolve } from 'node:path';
import { defineApp, json, workerMetrics } from '@oncely/core';
import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { cleanup } from '../support/cleanup.js';
import { startOncely } from '../support/cli.js';
import { createTopic, freshSchema, kafkaClient, pgPool, randomName } from '../support/fixtures.js';
import { realWorker, until } from '../support/oncely.js';
import { captureLogger, FIXTURES, oncely } from './support.js';

async function produce(topic: string, count: number): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: count }, (_, n) => ({ value: JSON.stringify({ n }) })) });
  await producer.disconnect();
}

const rows = async (table: string) =>
  (await pgPool().query<{ offset: string }>(`select "offset"::text as offset from ${table} order by "offset"`)).rows.map(
    (r) => r.offset,
  );

describe('a handler that does not settle', () => {
  it('is reported while it lasts (log, progress, metrics) and its batch commits once it settles', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('slow');
    const table = `${schema}.applied`;
    const group = randomName('slow');
    await produce(topic, 5);
    let release: () => void = () => {};
    const hung = new Promise<void>((r) => {
      release = r;
    });
    cleanup(() => release());
    const app = defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json() }, async (m, ctx) => {
      // A call without a timeout to a service that never answers.
      if (m.offset === 2n) await hung;
      await ctx.tx.raw(`insert into ${table} ("offset") values (?)`, [m.offset.toString()]);
    });
    const log = captureLogger();
    const w = await realWorker(app, schema, { logger: log, slowBatchWarningMs: 500 });
    await pgPool().query(`create table ${table} ("offset" bigint primary key)`);
    const metrics = workerMetrics(w);
    cleanup(() => metrics.stop());
    await w.start();

    const warned = () => log.lines.filter((l) => l.startsWith('warn batch still running after 500 ms'));
    await until(() => warned().length > 0, 'the slow batch reported');
    expect(warned()).toHaveLength(1);
    expect(warned()[0]).toMatch(/the handler awaits/);
    const fields = JSON.parse(warned()[0]!.slice(warned()[0]!.indexOf('{')));
    expect(fields).toMatchObject({ topic, partition: 0, from: '0', records: 5, at: '2' });
    expect(fields.runningForMs).toBeGreaterThanOrEqual(500);
    expect(w.state).toBe('running');
    expect(w.progress()[0]!.batchRunningMs).toBeGreaterThanOrEqual(500);
    const text = await metrics.registry.metrics();
    const gauge = text.match(new RegExp(`^oncely_batch_running_seconds\\{[^}]*topic="${topic}"[^}]*\\} (\\S+)$`, 'm'));
    expect(gauge, text).not.toBeNull();
    expect(Number(gauge![1])).toBeGreaterThanOrEqual(0.5);
    expect(await rows(table)).toEqual([]); // nothing of the batch is visible while it is open

    release();
    await until(() => w.progress()[0]?.nextOffset === 5n, 'the batch committed after the handler settled');
    expect(log.lines.filter((l) => l.startsWith('info slow batch settled'))).toHaveLength(1);
    expect(w.progress()[0]!.batchRunningMs).toBeUndefined();
    expect(await rows(table)).toEqual(['0', '1', '2', '3', '4']);
    await w.stop();
  });

  it('`oncely run` says so while a statement of the handler runs long, and applies every record once', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('slowcli');
    const table = `${schema}.applied`;
    const group = randomName('slowcli');
    const migrated = await oncely(['migrate', '--schema', schema]);
    expect(migrated.code, migrated.stderr).toBe(0);
    await pgPool().query(`create table ${table} (partition int, "offset" bigint, primary key (partition, "offset"))`);
    await produce(topic, 4);
    const run = startOncely(['run', resolve(FIXTURES, 'table-app.ts'), '--slow-batch-warning', '1000'], {
      ONCELY_SCHEMA: schema,
      APP_TABLE: table,
      APP_GROUP: group,
      APP_TOPIC: topic,
      APP_SLEEP_OFFSET: '1',
      APP_SLEEP_S: '4',
      ONCELY_LOG_LEVEL: 'info',
    });
    let stderr = '';
    run.child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await until(() => /INFO +slow batch settled/.test(stderr), 'the slow batch reported, then settled');
    expect(stderr).toMatch(
      /WARN +batch still running after 1000 ms \(--slow-batch-warning\).* from=0 records=4 at=1 runningForMs=\d+/,
    );
    await until(async () => (await rows(table)).length === 4, 'every record applied');
    run.child.kill('SIGTERM');
    const r = await run.result;
    expect(r.code, r.stderr).toBe(0);
    expect(await rows(table)).toEqual(['0', '1', '2', '3']);
  });
});
