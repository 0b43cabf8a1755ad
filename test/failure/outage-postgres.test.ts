/**
 * PostgreSQL crashes mid-stream (`pg_ctl restart -m immediate`, then a stop/start with a few
 * seconds of downtime, longer than the lease): the worker backs off with bounded, logged retries,
 * keeps its position, re-takes its leases, and every payment is applied exactly once.
 * Runs against a private cluster: the shared server on 5432 is never touched.
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
});
