/**
 * A record whose handler ends the worker process: restarted in a loop (as a supervisor would), the
 * worker dead-letters it as WorkerCrashedError once the crash budget is spent, and runs on.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokers, createTopic, databaseUrl, freshSchema, kafkaClient, pgPool } from '../support/fixtures.js';
import { pgStore, until } from '../support/oncely.js';
import { collect, FIXTURES, spawnTs } from './support.js';

let pool: ReturnType<typeof pgPool> | undefined;
const db = () => {
  pool ??= pgPool();
  return pool;
};

describe('crash budget (a handler that calls process.exit on one record)', () => {
  it('dead-letters the record after crashBudget restarts; every other record is applied once', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema('crash');
    const appSchema = freshSchema('crashapp');
    const table = `${appSchema}.seen`;
    await pgStore(schema); // migrated before the first worker starts
    await db().query(`create schema ${appSchema}`);
    await db().query(`create table ${table} (id text not null, partition int not null, "offset" bigint not null)`);
    const perPartition = 30;
    const producer = kafkaClient().producer();
    await producer.connect();
    for (const partition of [0, 1])
      await producer.send({
        topic,
        messages: Array.from({ length: perPartition }, (_, i) => ({
          partition,
          value: JSON.stringify({ id: `p${partition}-${i}` }),
        })),
      });
    await producer.disconnect();

    const crashBudget = 3;
    const group = `crash-${topic}`;
    const env = {
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      CRASH_SCHEMA: schema,
      CRASH_TABLE: table,
      CRASH_TOPIC: topic,
      CRASH_GROUP: group,
      CRASH_ON: 'p0-12',
      CRASH_BUDGET: String(crashBudget),
    };
    const positions = async () =>
      (
        await db().query<{ n: string }>(
          `select coalesce(sum(next_offset), 0)::text as n from ${schema}.partitions where group_id = $1`,
          [group],
        )
      ).rows[0]!.n;

    let exits = 0;
    let output = '';
    // The supervisor loop: restart the worker whenever it exits, until both partitions are done.
    for (;;) {
      const child = spawnTs(resolve(FIXTURES, 'crash-worker.ts'), env);
      const done = collect(child);
      const finished = until(
        async () => (await positions()) === String(2 * perPartition),
        'both partitions applied',
        90_000,
      ).then(() => 'caught-up' as const);
      const r = await Promise.race([done, finished]);
      if (r === 'caught-up') {
        child.kill('SIGTERM');
        output += (await done).stdout;
        break;
      }
      output += r.stdout;
      expect(r.code, r.stderr).toBe(1);
      exits++;
      expect(exits).toBeLessThanOrEqual(crashBudget + 1);
    }
    // Attempt 1 crashes on the first (batch) run; then crashBudget counted attempts; the next is dead-lettered.
    expect(exits).toBeGreaterThanOrEqual(crashBudget);
    expect(output).toContain('dead-letter 12 crash WorkerCrashedError');

    const dl = await db().query(
      `select topic, partition, "offset", error_name, error_message, attempts, value from ${schema}.dead_letters`,
    );
    expect(dl.rows).toHaveLength(1);
    expect(dl.rows[0]).toMatchObject({ topic, partition: 0, offset: '12', error_name: 'WorkerCrashedError' });
    expect(dl.rows[0].error_message).toContain(`crashBudget ${crashBudget}`);
    expect(dl.rows[0].value).toEqual(Buffer.from(JSON.stringify({ id: 'p0-12' })));

    const seen = await db().query<{ id: string; n: number }>(`select id, count(*)::int as n from ${table} group by id`);
    const expected = [0, 1]
      .flatMap((p) => Array.from({ length: perPartition }, (_, i) => `p${p}-${i}`))
      .filter((id) => id !== 'p0-12');
    expect(seen.rows.map((r) => r.id).sort()).toEqual(expected.sort());
    expect(seen.rows.filter((r) => r.n !== 1)).toEqual([]);
  });
});
