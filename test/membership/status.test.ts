/**
 * What `oncely status` shows an operator about membership: the registered workers (live or dead by
 * the database's clock, owned, held, target) and every partition's owner, "no owner" included,
 * also for a partition Kafka has but no worker has claimed yet.
 */
import { PostgresStore } from '@oncely/postgres-offsets';
import { afterAll, describe, expect, it } from 'vitest';
import { oncely } from '../support/cli.js';
import { createTopic, databaseUrl, freshSchema, pgPool, randomName } from '../support/fixtures.js';

describe('oncely status and membership', () => {
  const schema = freshSchema('status');
  const store = new PostgresStore({ connectionString: databaseUrl(), schema });
  afterAll(() => store.close());

  it('lists workers and every partition with its owner, or "no owner"', async () => {
    await store.migrate();
    const topic = await createTopic(3);
    const group = randomName('g');
    const beat = { group, host: 'pod-1', pid: 7, membership: 'elastic' as const, maxPartitions: null };
    await store.heartbeat({ ...beat, workerId: 'w-live', starting: true, target: 2, held: 1 }, 60_000);
    await store.heartbeat({ ...beat, workerId: 'w-dead', starting: true, target: 1, held: 1 }, 60_000);
    await pgPool().query(
      `update ${schema}.workers set heartbeat_at = now() - interval '2 minutes' where group_id = $1 and worker_id = 'w-dead'`,
      [group],
    );
    const claim = (partition: number, workerId: string) =>
      store.claim({ group, topic, partition, workerId, initialOffset: 0n, leaseMs: 60_000 });
    await claim(0, 'w-live');
    await store.release(await claim(1, 'w-dead'));
    // Partition 2 was never claimed: it has no row, only Kafka knows it.

    const env = { ONCELY_SCHEMA: schema };
    const text = await oncely(['status', '--group', group], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      new RegExp(`${group}\\s+w-dead\\s+pod-1\\s+7\\s+elastic\\s+dead\\s+2m\\d\\ds ago\\s+0\\s+1\\s+1`),
    );
    expect(text.stdout).toMatch(new RegExp(`${group}\\s+w-live\\s+pod-1\\s+7\\s+elastic\\s+live\\s+\\S+ ago\\s+1\\s+1\\s+2`));
    // … LAG STATE DEAD-LETTERS OWNER
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+0\\s+0\\s+0\\s+0\\s+running\\s+0\\s+w-live\\s`));
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+1\\s+0\\s+0\\s+0\\s+idle\\s+0\\s+no owner\\s`));
    expect(text.stdout).toMatch(new RegExp(`${topic}\\s+2\\s+-\\s+0\\s+-\\s+idle\\s+0\\s+no owner \\(never claimed\\)`));
    expect(text.stdout).toContain('3 partition(s), total lag 0, 2 without a live owner');

    const json = await oncely(['status', '--group', group, '--json'], env);
    const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((r) => [r.partition, r.nextOffset, r.owner])).toEqual([
      [0, '0', 'w-live'],
      [1, '0', null],
      [2, null, null],
    ]);
    const workers = await oncely(['status', '--group', group, '--workers', '--json'], env);
    expect((JSON.parse(workers.stdout) as Array<Record<string, unknown>>).map((w) => [w.workerId, w.live, w.owned])).toEqual([
      ['w-dead', false, 0],
      ['w-live', true, 1],
    ]);
  });
});
