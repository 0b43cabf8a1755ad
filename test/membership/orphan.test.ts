/**
 * The orphan case: workers A (`--worker 1/2`) and B (`2/2`) run while payments flow; a third
 * `oncely run` without a split is started and stopped among them. It must not steal anything
 * (claims take only free, released or expired partitions); started with `--force` it takes every
 * partition deliberately (logged, audited), and once it stops, A and B take their halves back.
 * Afterwards every partition has a live owner and the ledger audit is exact.
 */
import { auditLedger, highWatermarks, producePayments, waitCaughtUp } from '@oncely/examples';
import { afterAll, describe, expect, it } from 'vitest';
import { brokers } from '../support/fixtures.js';
import { assertionKnex, ownedBy, ownership, setupLedger, startRun, waitOwnership } from './support.js';

const LEASE_MS = 3_000;
/** The bound for a takeover, plus room for a loaded machine: a hang guard, not a timing assertion. */
const GUARD_MS = LEASE_MS + 5_000 + 30_000;

describe('a third static worker among two', () => {
  const knex = assertionKnex();
  afterAll(() => knex.destroy());

  it('never orphans a partition: it waits, or takes over by --force and gives everything back', {
    timeout: 300_000,
  }, async () => {
    const setup = await setupLedger(4, 'orphan', knex);
    const timing = ['--lease', String(LEASE_MS), '--heartbeat-interval', '500', '--batch-max-records', '20'];
    const a = startRun(setup, ['--worker', '1/2', '--worker-id', 'A', ...timing]);
    const b = startRun(setup, ['--worker', '2/2', '--worker-id', 'B', ...timing]);
    await waitOwnership(setup, 'A and B hold their halves', (rows) => rows.map((r) => r.owner).join() === 'A,B,A,B', GUARD_MS);

    const stopProducing = new AbortController();
    const production = producePayments({
      brokers: brokers(),
      topic: setup.topic,
      count: 1_000_000,
      chunk: 10,
      pauseMs: 50,
      signal: stopProducing.signal,
    });

    // C without a split wants every partition (elastic by default: it is the group's only elastic
    // worker), but all four are held by live workers: it waits.
    const c = startRun(setup, ['--worker-id', 'C', '--log-level', 'debug', ...timing]);
    await waitFor(() => (c.stderr().match(/partition held by another live worker/g) ?? []).length >= 4, 'C waiting', GUARD_MS);
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
    expect((await ownership(setup)).map((r) => `${r.owner}:${r.live}`)).toEqual(['A:true', 'B:true', 'A:true', 'B:true']);
    // Logged once per partition and holder, not once per retry.
    expect(c.stderr().match(/partition held by another live worker/g)).toHaveLength(4);
    c.child.kill('SIGTERM');
    expect((await c.result).code).toBe(0);
    expect(ownedBy('A', 'B')(await ownership(setup))).toBe(true);

    // With --force, C takes all four from the live A and B: they are fenced and drop them.
    const forced = startRun(setup, ['--worker-id', 'C', '--force', ...timing]);
    await waitOwnership(setup, 'C took every partition', ownedBy('C'), GUARD_MS);
    await waitFor(() => /took the partition over from a live worker by force/.test(forced.stderr()), 'force logged', GUARD_MS);
    const audit = await knex.raw<{ rows: Array<{ action: string; details: { from: string; to: string } }> }>(
      `select action, details from ${setup.oncelySchema}.admin_audit where group_id = ? order by id`,
      [setup.group],
    );
    expect(audit.rows.map((r) => `${r.action} ${r.details.from}->${r.details.to}`).sort()).toEqual([
      'partition.takeover A->C',
      'partition.takeover A->C',
      'partition.takeover B->C',
      'partition.takeover B->C',
    ]);
    await new Promise((r) => setTimeout(r, 1_000));
    // A clean stop releases: A and B take their halves back without waiting for a lease.
    forced.child.kill('SIGTERM');
    expect((await forced.result).code).toBe(0);
    await waitOwnership(
      setup,
      'A and B took their halves back',
      (rows) => rows.map((r) => `${r.owner}:${r.live}`).join() === 'A:true,B:true,A:true,B:true',
      GUARD_MS,
    );
    expect(a.stderr()).toMatch(/partition taken over by another worker; dropped/);

    stopProducing.abort();
    const produced = await production;
    const targets = await highWatermarks(brokers(), setup.topic);
    await waitCaughtUp(knex, setup.oncelySchema, setup.group, setup.topic, targets, { timeoutMs: 120_000 });
    expect(ownedBy('A', 'B')(await ownership(setup))).toBe(true);
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    expect((await a.result).code).toBe(0);
    expect((await b.result).code).toBe(0);
    const result = await auditLedger(knex, setup.ledgerSchema, produced);
    console.log(
      `orphan case: ${produced.count} payments, ${result.appliedRows} applied, ${result.duplicates} duplicates, ` +
        `${result.missing} missing, ${result.orderViolations} out of order`,
    );
    expect(produced.count).toBeGreaterThan(0);
    expect(result).toMatchObject({ duplicates: 0, missing: 0, unknown: 0, orderViolations: 0, appliedRows: produced.count });
    expect(result.balanceMismatches).toEqual([]);
  });
});

async function waitFor(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
