/**
 * Chaos: three elastic ledger workers (real processes) share a group while payments flow, and one
 * of them is SIGKILLed at random again and again: at a random moment, inside a transaction (on its
 * `phase in-tx` line), or while it is still starting. Each killed worker is restarted at once,
 * half the time under its old identity (it takes its own partitions back at once) and half the time
 * under a new one (its dead self's partitions wait for the lease, its heartbeat for the session
 * timeout). Afterwards the group must converge (every partition owned by exactly one live worker)
 * and the ledger audit must be exact: every payment applied once, in order per partition, every
 * balance the sum sent, nothing dead-lettered.
 *
 * ONCELY_CHAOS_KILLS sets the number of kills (default 30; thousands for a soak), ONCELY_CHAOS_SEED
 * the random seed (printed, so that a failing run can be replayed).
 */
import { auditLedger, highWatermarks, producePayments, waitCaughtUp } from '@oncely/examples';
import { afterAll, describe, expect, it } from 'vitest';
import { brokers } from '../support/fixtures.js';
import { assertionKnex, converged, type GroupMember, setupLedger, startMember, waitOwnership } from './support.js';

const kills = Number(process.env.ONCELY_CHAOS_KILLS ?? 30);
const seed = Number(process.env.ONCELY_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator, so that a run's choices can be replayed. */
function random(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A hang guard (not a timing assertion): a loaded machine may be slow. */
const CONVERGE_GUARD_MS = 120_000;

describe('chaos in an elastic group', () => {
  const knex = assertionKnex();
  afterAll(() => knex.destroy());

  it(`applies every payment exactly once across ${kills} random SIGKILLs and restarts of 3 workers`, {
    timeout: 30 * 60_000 + kills * 30_000,
  }, async () => {
    const rnd = random(seed);
    const setup = await setupLedger(6, 'chaos', knex);
    const env = {
      // Kills come from outside at random and may land on the same record again and again; the
      // crash budget is for poison records (its own test). Here every record must be applied.
      LEDGER_CRASH_BUDGET: '1000000',
      // A little time inside each transaction makes "in-transaction" kills land there.
      LEDGER_HANDLER_DELAY_MS: '1',
    };
    // Each member's "running" line, awaited from its start (waitFor sees only lines yet to come).
    const running = new Map<GroupMember, Promise<unknown>>();
    const start = (id: string) => {
      const m = startMember(setup, id, env);
      running.set(
        m,
        m.proc.waitFor(/^phase running/).catch(() => undefined),
      );
      return m;
    };
    const slots: GroupMember[] = [0, 1, 2].map((i) => start(`c${i}`));
    await Promise.all(slots.map((m) => running.get(m)));
    await waitOwnership(setup, '3 workers share 6 partitions', converged(setup, slots), CONVERGE_GUARD_MS);

    const stopProducing = new AbortController();
    const production = producePayments({
      brokers: brokers(),
      topic: setup.topic,
      count: 10_000_000,
      chunk: 10,
      pauseMs: 30,
      signal: stopProducing.signal,
    });

    const aimed: Record<string, number> = {};
    const landed: Record<string, number> = {};
    let restartsSameId = 0;
    const started = performance.now();
    for (let k = 0; k < kills; k++) {
      const slot = Math.floor(rnd() * slots.length);
      const victim = slots[slot]!;
      const r = rnd();
      const mode = r < 0.4 ? 'random' : r < 0.8 ? 'in-transaction' : 'starting';
      aimed[mode] = (aimed[mode] ?? 0) + 1;
      if (mode === 'random') await sleep(rnd() * 1_500);
      else if (mode === 'in-transaction') {
        // A worker that holds nothing at the moment prints no in-tx line: kill it after a while anyway.
        await Promise.race([victim.proc.waitFor(/^phase in-tx/).catch(() => undefined), sleep(3_000)]);
      }
      victim.proc.child.kill('SIGKILL');
      await victim.proc.exited;
      const last = victim.proc.lastPhase()?.split(' ')[1] ?? 'none';
      const where = last === 'in-tx' ? 'in-transaction' : last === 'committed' ? 'after-commit' : 'starting';
      landed[where] = (landed[where] ?? 0) + 1;

      const sameId = rnd() < 0.5;
      if (sameId) restartsSameId++;
      const id = sameId ? victim.id : `c${slot}-${k}`;
      const next = start(id);
      slots[slot] = next;
      // The next kill of this slot may come while it starts ('starting'); otherwise let it run first.
      if (rnd() < 0.75) await running.get(next);
      await sleep(200 + rnd() * 800);
    }
    const chaosSeconds = (performance.now() - started) / 1000;

    // The survivors must take every partition: nothing orphaned by the chaos.
    await Promise.all(slots.map((m) => running.get(m)));
    const t = performance.now();
    await waitOwnership(setup, 'the last 3 workers share 6 partitions', converged(setup, slots), CONVERGE_GUARD_MS);
    const convergeSeconds = (performance.now() - t) / 1000;

    stopProducing.abort();
    const produced = await production;
    await waitCaughtUp(knex, setup.oncelySchema, setup.group, setup.topic, await highWatermarks(brokers(), setup.topic), {
      timeoutMs: 300_000,
    });
    const exits = await Promise.all(
      slots.map((m) => {
        m.proc.child.kill('SIGTERM');
        return m.proc.exited;
      }),
    );
    const audit = await auditLedger(knex, setup.ledgerSchema, produced);
    const dead = await knex.raw<{ rows: Array<{ n: number }> }>(
      `select count(*)::int as n from ${setup.oncelySchema}.dead_letters where group_id = ?`,
      [setup.group],
    );
    console.log(
      `chaos (seed ${seed}): ${kills} SIGKILLs in ${chaosSeconds.toFixed(0)} s, aimed ${JSON.stringify(aimed)}, ` +
        `landed ${JSON.stringify(landed)}, ${restartsSameId} restarts under the same id; converged ${convergeSeconds.toFixed(1)} s ` +
        `after the last restart ran; ${produced.count} payments, ${audit.appliedRows} applied, ${audit.duplicates} duplicates, ` +
        `${audit.missing} missing, ${audit.balanceMismatches.length} wrong balances, ${audit.orderViolations} out of order, ` +
        `${dead.rows[0]!.n} dead-lettered`,
    );
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
    expect(produced.count).toBeGreaterThan(0);
    expect(audit).toMatchObject({ duplicates: 0, missing: 0, unknown: 0, orderViolations: 0, appliedRows: produced.count });
    expect(audit.balanceMismatches).toEqual([]);
    expect(dead.rows[0]!.n).toBe(0);
    expect(Object.values(landed).reduce((a, b) => a + b, 0)).toBe(kills);
    // The kills must really have hit the transaction window, not only the quiet moments.
    if (kills >= 10) expect(landed['in-transaction'] ?? 0).toBeGreaterThan(0);
  });
});
