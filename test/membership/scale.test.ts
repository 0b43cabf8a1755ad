/**
 * Scale while producing, with real worker processes (elastic membership): start 1 worker, add 2,
 * stop 1 gracefully, SIGKILL 1, add 1, add partitions to the topic, then add 1 more to the two.
 * After each step the group must converge: every partition owned by exactly one live worker (the
 * database's owner with a live lease, and the workers' own accounts agreeing), each with its even
 * share, on an assignment that is a fixed point of the one every worker computes. The moves are
 * the issue's bounds and are asserted: a join moves at most ⌈P/N⌉ partitions per newcomer, all of
 * them to the newcomers (also when it joins two workers, not only one); a clean stop or a death
 * moves the leaver's partitions and no other; added partitions move nothing else. How long each
 * step took is printed; only a generous hang guard bounds the time. At the end the ledger audit
 * must be exact: every payment applied once, in order.
 */
import { auditLedger, highWatermarks, producePayments, waitCaughtUp } from '@oncely/examples';
import { afterAll, describe, expect, it } from 'vitest';
import { assignPartitions } from '../../packages/core/src/membership/rendezvous.js';
import { oncely } from '../support/cli.js';
import { brokers, kafkaClient } from '../support/fixtures.js';
import {
  assertionKnex,
  converged,
  type GroupMember,
  type LedgerSetup,
  type Ownership,
  setupLedger,
  startMember,
  stopMember,
  waitOwnership,
} from './support.js';

/** A hang guard far above lease + 5 s: a loaded machine may be slow; the figures are printed. */
const GUARD_MS = 90_000;

describe('scaling an elastic group while payments flow', () => {
  const knex = assertionKnex();
  afterAll(() => knex.destroy());

  it('every partition has exactly one live owner after each join, leave and death; the audit is exact', {
    timeout: 600_000,
  }, async () => {
    const setup = await setupLedger(6, 'scale', knex);
    const env = { LEDGER_PARTITION_REFRESH_MS: '1000' };
    const figures: string[] = [];
    let owners = new Map<number, string | null>();
    /**
     * Waits until the group has converged on `live` with the assignment every worker computes,
     * prints how long it took and how many partitions changed owner, and checks which moved: for a
     * join (`change.joined`) at most ⌈P/N⌉ per newcomer, all to the newcomers; for a leave
     * (`change.left`) exactly the leaver's partitions; otherwise only partitions without an owner.
     */
    const step = async (what: string, live: GroupMember[], from: number, change: { joined?: string[]; left?: string } = {}) => {
      const rows = await waitOwnership(setup, what, (r) => converged(setup, live)(r) && onTarget(setup, live)(r), GUARD_MS);
      const seconds = (performance.now() - from) / 1000;
      const first = owners.size === 0;
      const moves = rows.filter((r) => owners.get(r.partition) !== r.owner);
      const share = Math.ceil(setup.partitions / live.length);
      figures.push(`${what}: ${seconds.toFixed(1)} s${first ? '' : `, ${moves.length} moved (⌈P/N⌉ = ${share})`}`);
      if (!first) {
        if (change.joined) {
          expect(moves.length, `${what}: partitions moved`).toBeLessThanOrEqual(change.joined.length * share);
          expect(
            moves.every((r) => change.joined!.includes(r.owner!)),
            `${what}: only to the newcomers`,
          ).toBe(true);
        } else if (change.left) {
          const held = [...owners].filter(([, o]) => o === change.left).map(([p]) => p);
          expect(held.length).toBeGreaterThan(0);
          expect(moves.map((r) => r.partition).sort(), `${what}: only the leaver's partitions`).toEqual(held.sort());
        } else {
          expect(
            moves.every((r) => !owners.has(r.partition)),
            `${what}: only new partitions`,
          ).toBe(true);
        }
      }
      owners = new Map(rows.map((r) => [r.partition, r.owner]));
    };

    let t = performance.now();
    const w1 = startMember(setup, 'w1', env);
    await step('1 worker took all 6', [w1], t);

    const stopProducing = new AbortController();
    const production = producePayments({
      brokers: brokers(),
      topic: setup.topic,
      count: 1_000_000,
      chunk: 10,
      pauseMs: 60,
      signal: stopProducing.signal,
    });

    const w2 = startMember(setup, 'w2', env);
    const w3 = startMember(setup, 'w3', env);
    // A join is timed from when the newcomers run (process start-up is not the group's doing).
    await Promise.all([w2.proc.waitFor(/^phase running/), w3.proc.waitFor(/^phase running/)]);
    t = performance.now();
    await step('2 joined (rebalance to 3 x 2)', [w1, w2, w3], t, { joined: ['w2', 'w3'] });
    await expectStatus(setup, ['w1', 'w2', 'w3']);

    t = performance.now();
    expect((await stopMember(w2, 'SIGTERM')).code).toBe(0);
    await step('1 stopped cleanly (2 x 3)', [w1, w3], t, { left: 'w2' });

    t = performance.now();
    await stopMember(w3, 'SIGKILL');
    await step('1 SIGKILLed (takeover: 1 x 6)', [w1], t, { left: 'w3' });

    const w4 = startMember(setup, 'w4', env);
    await w4.proc.waitFor(/^phase running/);
    t = performance.now();
    await step('1 joined (rebalance to 2 x 3)', [w1, w4], t, { joined: ['w4'] });

    // New partitions are picked up without a restart.
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      await admin.createPartitions({ topicPartitions: [{ topic: setup.topic, count: 8 }] });
    } finally {
      await admin.disconnect();
    }
    (setup as { partitions: number }).partitions = 8;
    t = performance.now();
    await step('2 partitions added (2 x 4)', [w1, w4], t);

    // A join to more than one worker: 8 partitions on 3, the newcomer takes 2 (at most ⌈8/3⌉ = 3).
    const w5 = startMember(setup, 'w5', env);
    await w5.proc.waitFor(/^phase running/);
    t = performance.now();
    await step('1 joined two (3, 3, 2)', [w1, w4, w5], t, { joined: ['w5'] });

    stopProducing.abort();
    const produced = await production;
    await waitCaughtUp(knex, setup.oncelySchema, setup.group, setup.topic, await highWatermarks(brokers(), setup.topic), {
      timeoutMs: 180_000,
    });
    expect((await stopMember(w1, 'SIGTERM')).code).toBe(0);
    expect((await stopMember(w4, 'SIGTERM')).code).toBe(0);
    expect((await stopMember(w5, 'SIGTERM')).code).toBe(0);
    const audit = await auditLedger(knex, setup.ledgerSchema, produced);
    console.log(
      `scale: ${figures.join('; ')}\n` +
        `scale: ${produced.count} payments, ${audit.appliedRows} applied, ${audit.duplicates} duplicates, ${audit.missing} missing, ` +
        `${audit.orderViolations} out of order`,
    );
    expect(produced.count).toBeGreaterThan(0);
    expect(audit).toMatchObject({ duplicates: 0, missing: 0, unknown: 0, orderViolations: 0, appliedRows: produced.count });
    expect(audit.balanceMismatches).toEqual([]);
  });
});

/**
 * The owners are a fixed point of the assignment every worker computes from the live workers and
 * the owners themselves: nothing would move any more.
 */
function onTarget(setup: LedgerSetup, live: readonly GroupMember[]) {
  return (rows: Ownership[]) => {
    const owners = new Map(rows.filter((r) => r.owner !== null).map((r) => [`${setup.topic}:${r.partition}`, r.owner!]));
    const target = assignPartitions(
      live.map((m) => ({ workerId: m.id })),
      Array.from({ length: setup.partitions }, (_, partition) => ({ topic: setup.topic, partition })),
      owners,
    );
    return rows.every((r) => target.get(`${setup.topic}:${r.partition}`) === r.owner);
  };
}

/** `oncely status` shows every worker live with its share, and every partition's owner. */
async function expectStatus(setup: LedgerSetup, live: string[]): Promise<void> {
  const env = { ONCELY_SCHEMA: setup.oncelySchema };
  // What a worker reports comes with its next heartbeat (every 500 ms here): poll briefly.
  let rows: Array<Record<string, unknown>> = [];
  const want = JSON.stringify(live.map((id) => [id, 'elastic', true, 2, 2, 2]));
  for (let i = 0; i < 20; i++) {
    const workers = await oncely(['status', '--group', setup.group, '--workers', '--json'], env);
    expect(workers.code, workers.stderr).toBe(0);
    rows = JSON.parse(workers.stdout) as Array<Record<string, unknown>>;
    if (JSON.stringify(rows.map((w) => [w.workerId, w.membership, w.live, w.owned, w.held, w.target])) === want) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(rows.map((w) => [w.workerId, w.membership, w.live, w.owned, w.held, w.target])).toEqual(JSON.parse(want));
  const text = await oncely(['status', '--group', setup.group], env);
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toMatch(/GROUP\s+WORKER\s+HOST\s+PID\s+MEMBERSHIP\s+STATE\s+HEARTBEAT\s+OWNED\s+HELD\s+TARGET/);
  for (const id of live)
    expect(text.stdout).toMatch(new RegExp(`${id}\\s+\\S+\\s+\\d+\\s+elastic\\s+live\\s+\\S+ ago\\s+2\\s+2\\s+2`));
  expect(text.stdout).toMatch(/6 partition\(s\), total lag \d+\n/);
}
