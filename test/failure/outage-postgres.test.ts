/**
 * PostgreSQL crashes mid-stream (`pg_ctl restart -m immediate`, then a stop/start with a few
 * seconds of downtime, longer than the lease): the worker backs off with bounded, logged retries,
 * keeps its position, re-takes its leases, and every payment is applied exactly once.
 * Runs against a private cluster: the shared server on 5432 is never touched.
 *
 * A restart ends every session, the live workers' too: two workers of one group whose heartbeat
 * sessions vanished in it must not take each other for dead processes (a worker whose recorded
 * session is gone counts as dead after two rounds, but not when that session is older than the
 * server), so no partition moves when the outage is shorter than the leases.
 */
import { describe, expect, it } from 'vitest';
import { brokers, createTopic } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { expectExactlyOnce, expectLeasesHeld, paymentStream, startLedger } from './outage-support.js';
import { privatePostgres } from './support.js';

describe('PostgreSQL outage mid-stream (private cluster)', () => {
  it('backs off, resumes at its stored position and applies every record exactly once', async () => {
    const pg = await privatePostgres();
    const topic = await createTopic(3);
    const run = await startLedger({ databaseUrl: pg.url, brokers: brokers(), topic, schema: 'oncely' });
    const stream = paymentStream(brokers(), topic, 3000);
    const committed = () => run.worker.progress().reduce((a, p) => a + p.committedRecords, 0);

    await until(() => committed() > 300, 'some payments applied before the crash');
    await pg.restartImmediate();
    const before = committed();
    await until(() => committed() > before + 300, 'progress after the immediate restart');
    await pg.outage(4000);
    const produced = await stream;
    await expectExactlyOnce(run, brokers(), topic, produced);
    await expectLeasesHeld(run, topic, run.worker.options.workerId);

    // The retries were logged, bounded (no delay over the 10 s cap) and name the cause.
    const retries = run.logs.filter((l) => /store unavailable; retrying|membership round failed|fetch failed; retrying/.test(l));
    expect(retries.length).toBeGreaterThan(0);
    for (const l of run.logs.filter((x) => x.includes('retryInMs'))) {
      expect(Number(/"retryInMs":(\d+)/.exec(l)?.[1])).toBeLessThanOrEqual(10_000);
    }
    expect(run.logs.join('\n')).toMatch(/PostgreSQL at .* is unavailable/);
  });

  it('a restart ends every session: live workers do not take each other for dead, and nothing moves', async () => {
    const pg = await privatePostgres();
    const topic = await createTopic(4);
    // Leases outlast the outage; the grace for a worker whose session is gone (two rounds, 2 s) does not.
    const timings = { leaseMs: 30_000, sessionTimeoutMs: 30_000, heartbeatIntervalMs: 1000 };
    const a = await startLedger({ databaseUrl: pg.url, brokers: brokers(), topic, schema: 'oncely', timings });
    const b = await startLedger({ databaseUrl: pg.url, brokers: brokers(), topic, schema: 'oncely', timings, join: a });
    const held = (run: typeof a) => run.worker.progress().length;
    await until(() => held(a) === 2 && held(b) === 2, 'the two workers share the 4 partitions');
    const stream = paymentStream(brokers(), topic, 3000);
    const committed = () => [a, b].reduce((n, run) => n + run.worker.progress().reduce((m, p) => m + p.committedRecords, 0), 0);
    await until(() => committed() > 300, 'some payments applied before the outage');
    const owners = async () =>
      (
        await a.store.knex.raw<{ rows: Array<{ partition: number; owner: string; epoch: string }> }>(
          `select partition, owner, epoch::text from oncely.partitions where group_id = ? and topic = ? order by partition`,
          [a.group, topic],
        )
      ).rows;
    const before = await owners();
    await pg.outage(4000);
    const after = committed();
    await until(() => committed() > after + 300, 'progress after the outage');
    const produced = await stream;
    await expectExactlyOnce(a, brokers(), topic, produced);
    // Nobody was taken for dead: the same owners at the same epochs (nothing claimed, nothing fenced).
    expect(await owners()).toEqual(before);
    for (const run of [a, b]) expect(run.logs.join('\n')).not.toMatch(/process is gone|commit refused/);
  });
});
