/**
 * Zombies: a worker frozen inside a transaction (SIGSTOP) past its lease and its session timeout
 * is taken over by the others; when it wakes (SIGCONT) its late commit must be refused by the
 * fence and nothing it wrote in that transaction may stay. Three elastic ledger workers (real
 * processes) share a group while payments flow. Each trial: the victim is told (SIGUSR2) to stall
 * the next record it applies inside the open transaction; on its `phase stalled <p>:<offset>` line
 * it gets SIGSTOP; once the other two own every partition it gets SIGCONT; it must then report the
 * stalled partition fenced (`event fenced <p> <epoch> dropped <by>`: by its commit, or by its
 * renewal or its release when that found the claim gone first), each fence counted with what found
 * it, and the group must converge again with the victim back in it. z2 lets PostgreSQL end a
 * batch's session after 1 s idle, below the takeover time: when it wakes, its session is already
 * gone, and the error its next statement gets must still be told apart from an outage
 * (IDLE_IN_TRANSACTION, the claim re-checked, the fence reported) on a loaded machine as on a quiet
 * one.
 *
 * The rows prove the zombie wrote nothing after losing the lease: the stalled offset is committed
 * under a newer epoch (by the worker that took over, or by the victim after it claimed the
 * partition again), no commit of the victim's old epoch reaches it, and every
 * partition's offset log is one chain (each commit starts where the previous one ended, epochs never
 * go back), which a late commit accepted after a takeover would break. The ledger audit is exact.
 *
 * ONCELY_ZOMBIE_TRIALS sets the number of trials (default 10). Takeover times are printed, not
 * asserted.
 */
import { createInterface } from 'node:readline';
import { auditLedger, highWatermarks, producePayments, waitCaughtUp } from '@oncely/examples';
import { afterAll, describe, expect, it } from 'vitest';
import { brokers } from '../support/fixtures.js';
import { fenceCounts } from './fences.js';
import { assertionKnex, converged, type GroupMember, setupLedger, startMember, waitOwnership } from './support.js';

const trials = Number(process.env.ONCELY_ZOMBIE_TRIALS ?? 10);
/** Hang guards (not timing assertions): a loaded machine may be slow. */
const GUARD_MS = 120_000;

/** Resolves with `p`, or rejects after `ms` saying what was awaited. */
function guard<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not seen after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

interface Trial {
  victim: string;
  partition: number;
  offset: bigint;
  epoch: bigint;
  takeoverSeconds: number;
  backSeconds: number;
}

describe('zombie workers in an elastic group', () => {
  const knex = assertionKnex();
  afterAll(() => knex.destroy());

  it(`refuses the late commits of ${trials} workers frozen in a transaction past their lease`, {
    timeout: 10 * 60_000 + trials * 60_000,
  }, async () => {
    const setup = await setupLedger(6, 'zombie', knex);
    // The stall only keeps the transaction open until the SIGSTOP lands; the freeze does the rest.
    // A victim frozen between its compare-and-set and COMMIT holds its partition's row: PostgreSQL
    // ends that session after the idle-in-transaction timeout, and only then can the others claim
    // the partition. Above the usual takeover time, so most trials freeze inside the handler and
    // their late commit is refused as it is attempted. z2's 1 s is below it: its session always
    // ends while it is frozen, and its late commit is refused when it tries the batch again.
    const env = { LEDGER_STALL_MS: '2000', LEDGER_IDLE_TX_MS: '8000' };
    const members: GroupMember[] = [0, 1, 2].map((i) =>
      startMember(setup, `z${i}`, i === 2 ? { ...env, LEDGER_IDLE_TX_MS: '1000' } : env),
    );
    // The workers' own log lines for a refused commit, counted as they come (stderr() keeps only a tail).
    const refusedLogged = members.map(() => 0);
    for (const [i, m] of members.entries()) {
      createInterface({ input: m.proc.child.stderr! }).on('line', (line) => {
        if (line.includes('commit refused: the claim is no longer current')) refusedLogged[i]!++;
      });
    }
    await Promise.all(members.map((m) => m.proc.waitFor(/^phase running/)));
    await waitOwnership(setup, '3 workers share 6 partitions', converged(setup, members), GUARD_MS);

    const stopProducing = new AbortController();
    const production = producePayments({
      brokers: brokers(),
      topic: setup.topic,
      count: 10_000_000,
      chunk: 10,
      pauseMs: 40,
      signal: stopProducing.signal,
    });

    const done: Trial[] = [];
    for (let t = 0; t < trials; t++) {
      const victim = members[t % members.length]!;
      const others = members.filter((m) => m !== victim);
      const stalled = victim.proc.waitFor(/^phase stalled /);
      victim.proc.child.kill('SIGUSR2');
      const [p, o] = (await guard(stalled, GUARD_MS, `${victim.id} stalling`)).split(' ')[2]!.split(':');
      victim.proc.child.kill('SIGSTOP');
      const stoppedAt = performance.now();
      const partition = Number(p);
      const claims = victim.proc.events().filter((l) => l.startsWith(`event claim ${partition} `));
      const epoch = BigInt(claims.at(-1)!.split(' ')[3]!);

      await waitOwnership(setup, `trial ${t}: the others took ${victim.id}'s partitions`, converged(setup, others), GUARD_MS);
      const takeoverSeconds = (performance.now() - stoppedAt) / 1000;
      expect(victim.held().has(partition)).toBe(true); // frozen: it still believes it holds the partition

      // Refused at its commit (when PostgreSQL ended the frozen session: at the batch's next try,
      // or as the partition is handed off before it), found by its lease renewal when the runner
      // stops before it reads the renewal's request to re-check its claim, or by the release of
      // its hand-off when the takeover came after its last renewal.
      const fenced = victim.proc.waitFor(new RegExp(`^event fenced ${partition} ${epoch} dropped (commit|renewal|release)$`));
      const wokeAt = performance.now();
      victim.proc.child.kill('SIGCONT');
      await guard(fenced, GUARD_MS, `trial ${t}: ${victim.id}'s late commit on partition ${partition} refused`).catch((e) => {
        // What the victim did instead, for whoever reads the failure.
        console.error(`${victim.id}'s last events:\n${victim.proc.events().slice(-40).join('\n')}`);
        console.error(`${victim.id}'s stderr (tail):\n${victim.proc.stderr().slice(-6000)}`);
        throw e;
      });
      await waitOwnership(setup, `trial ${t}: ${victim.id} back in the group`, converged(setup, members), GUARD_MS);
      done.push({
        victim: victim.id,
        partition,
        offset: BigInt(o!),
        epoch,
        takeoverSeconds,
        backSeconds: (performance.now() - wokeAt) / 1000,
      });
    }

    stopProducing.abort();
    const produced = await production;
    await waitCaughtUp(knex, setup.oncelySchema, setup.group, setup.topic, await highWatermarks(brokers(), setup.topic), {
      timeoutMs: 300_000,
    });
    const exits = await Promise.all(
      members.map((m) => {
        m.proc.child.kill('SIGTERM');
        return m.proc.exited;
      }),
    );

    // Each zombie was refused, and counted by the zombie itself: by its late commit, or by its
    // renewal or its release when that found the claim gone first (what each trial waits for).
    const fences = members.map((m) => fenceCounts(m.proc.events()));
    const refused = fences.map((f) => f.total);

    const log = `${setup.oncelySchema}.offset_log`;
    let reclaimedByVictim = 0;
    for (const trial of done) {
      // Nothing of the victim's old epoch reached the stalled record...
      const old = await knex.raw<{ rows: Array<{ max: string | null }> }>(
        `select max(to_offset)::text as max from ${log} where group_id = ? and topic = ? and partition = ? and epoch = ? and worker_id = ?`,
        [setup.group, setup.topic, trial.partition, trial.epoch.toString(), trial.victim],
      );
      const reached = old.rows[0]!.max === null ? -1n : BigInt(old.rows[0]!.max);
      expect(reached, `trial ${JSON.stringify(trial, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`).toBeLessThanOrEqual(
        trial.offset,
      );
      // ...which was committed under a newer epoch: by the worker that took over, or by the victim
      // itself after it re-claimed the partition (a new claim, after its fence).
      const by = await knex.raw<{ rows: Array<{ worker_id: string; epoch: string }> }>(
        `select worker_id, epoch::text from ${log}
          where group_id = ? and topic = ? and partition = ? and from_offset <= ? and to_offset > ?`,
        [setup.group, setup.topic, trial.partition, trial.offset.toString(), trial.offset.toString()],
      );
      expect(by.rows).toHaveLength(1);
      expect(BigInt(by.rows[0]!.epoch)).toBeGreaterThan(trial.epoch);
      if (by.rows[0]!.worker_id === trial.victim) reclaimedByVictim++;
    }
    // Every partition's commits form one chain in commit order: no late commit slipped in behind a newer epoch.
    const breaks = await knex.raw<{ rows: Array<{ partition: number; id: string }> }>(
      `select partition, id::text from (
         select partition, id, from_offset, epoch,
                lag(to_offset) over w as prev_to, lag(epoch) over w as prev_epoch
           from ${log} where group_id = ? and topic = ?
         window w as (partition by partition order by id)
       ) t where prev_to is not null and (from_offset <> prev_to or epoch < prev_epoch)`,
      [setup.group, setup.topic],
    );
    const audit = await auditLedger(knex, setup.ledgerSchema, produced);
    const secs = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');
    console.log(
      `zombie: ${done.length} trials; takeover after SIGSTOP (s): ${secs(done.map((d) => d.takeoverSeconds))}; ` +
        `back in the group after SIGCONT (s): ${secs(done.map((d) => d.backSeconds))}; zombies refused per worker ` +
        `${refused.join('/')} (by commit ${fences.map((f) => f.commit).join('/')}, logged ${refusedLogged.join('/')}; ` +
        `by renewal ${fences.map((f) => f.renewal).join('/')}; by release ${fences.map((f) => f.release).join('/')}); ` +
        'stalled records applied by the victim after re-claiming ' +
        `${reclaimedByVictim}; offset-log chain breaks ${breaks.rows.length}; ` +
        `${produced.count} payments, ${audit.appliedRows} applied, ${audit.duplicates} duplicates, ${audit.missing} missing, ` +
        `${audit.orderViolations} out of order`,
    );
    expect(done).toHaveLength(trials);
    expect(refused.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(trials);
    // A refused commit is also logged as one (the other fences have their own lines).
    expect(refusedLogged).toEqual(fences.map((f) => f.commit));
    expect(breaks.rows).toEqual([]);
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
    expect(produced.count).toBeGreaterThan(0);
    expect(audit).toMatchObject({ duplicates: 0, missing: 0, unknown: 0, orderViolations: 0, appliedRows: produced.count });
    expect(audit.balanceMismatches).toEqual([]);
  });
});
