/**
 * Elastic membership at scale, against the real store: `--workers` in-process ElasticMembership
 * instances (the same rounds a worker runs: heartbeat, one-statement lease renewal, target,
 * hand-offs, claims) share a group of `--partitions` partitions in PostgreSQL. No Kafka: the
 * partitions are a fixed list and nothing is applied, so what is measured is the membership alone.
 *
 * Steps, each timed until the group has converged (every partition owned, with a live lease, by
 * a live worker that holds and targets it, and the owners a fixed point of the shared assignment):
 *   1. cold start: all workers at once;
 *   2. steady state: store calls and PostgreSQL transactions per second per worker;
 *   3. a join; 4. a clean leave (drain + release); 5. a death (no leave, no release: its
 *      registration ages out after the session timeout, its leases expire).
 * Partitions moved = partitions whose owner differs before and after a step.
 *
 *   pnpm bench:membership [--partitions 1000] [--workers 50] [--lease 15000] [--heartbeat 3000]
 *                         [--session 15000] [--steady 30000] [--stores 10] [--pool 3]
 *
 * DATABASE_URL (or the project's services) gives the database; the schema it creates is dropped.
 * Prints figures only; it asserts nothing but convergence within a generous guard.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { type Claim, type PartitionReader, silentLogger, type TransactionalStore } from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import knexFactory from 'knex';
import { assignPartitions, ElasticMembership, type MembershipHost } from '../packages/core/src/membership/index.js';
import { databaseOnly } from './prologue.js';

const { values: flags } = parseArgs({
  options: {
    partitions: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '50' },
    lease: { type: 'string', default: '15000' },
    heartbeat: { type: 'string', default: '3000' },
    session: { type: 'string', default: '15000' },
    steady: { type: 'string', default: '30000' },
    stores: { type: 'string', default: '10' },
    pool: { type: 'string', default: '3' },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log(
    'pnpm bench:membership [--partitions 1000] [--workers 50] [--lease 15000] [--heartbeat 3000] [--session 15000] [--steady 30000] [--stores 10] [--pool 3]',
  );
  process.exit(0);
}
const P = Number(flags.partitions);
const W = Number(flags.workers);
const leaseMs = Number(flags.lease);
const heartbeatIntervalMs = Number(flags.heartbeat);
const sessionTimeoutMs = Number(flags.session);
const steadyMs = Number(flags.steady);
const storeCount = Number(flags.stores);
const poolMax = Number(flags.pool);
/** A hang guard for each step, far above what a step should take. */
const GUARD_MS = 10 * Math.max(leaseMs, sessionTimeoutMs) + 60_000;

const databaseUrl = await databaseOnly();
const schema = `bench_membership_${randomBytes(3).toString('hex')}`;
const group = 'bench';
const topic = 'bench';
const partitions = Array.from({ length: P }, (_, partition) => ({ topic, partition }));

// The partitions as a fixed list: listing and initial offsets are all a membership asks of a reader.
const reader = {
  partitions: async () => partitions.map((p) => p.partition),
  resolveOffsets: async (_topic: string, ps: readonly number[]) => new Map(ps.map((p) => [p, 0n] as const)),
} as unknown as PartitionReader;

/** Store calls per worker and method: each is one statement (claims and heartbeats included). */
const calls = new Map<string, Map<string, number>>();
const COUNTED = new Set(['claim', 'renew', 'heartbeat', 'release', 'leave']);
function counting<Tx>(store: TransactionalStore<Tx>, workerId: string): TransactionalStore<Tx> {
  const mine = new Map<string, number>();
  calls.set(workerId, mine);
  return new Proxy(store, {
    get(target, key) {
      const v = Reflect.get(target, key, target);
      if (typeof v !== 'function') return v;
      if (typeof key === 'string' && COUNTED.has(key)) {
        return (...args: unknown[]) => {
          mine.set(key, (mine.get(key) ?? 0) + 1);
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

const stores = Array.from(
  { length: storeCount },
  (_, i) => new PostgresStore({ connectionString: databaseUrl, schema, poolMax, applicationName: `bench-membership-${i}` }),
);
const knex = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 2 } });
const key = (c: { topic: string; partition: number }) => `${c.topic}:${c.partition}`;

class SimWorker {
  readonly held = new Map<string, Claim>();
  readonly membership: ElasticMembership<unknown>;
  constructor(
    readonly id: string,
    store: TransactionalStore<unknown>,
  ) {
    this.membership = new ElasticMembership({
      group,
      topics: [topic],
      reader,
      store: counting(store, id),
      workerId: id,
      leaseMs,
      heartbeatIntervalMs,
      sessionTimeoutMs,
      partitionRefreshMs: 3_600_000,
      initialOffset: 'earliest',
      logger: silentLogger,
    });
  }
  readonly host: MembershipHost = {
    held: () => [...this.held.values()],
    gained: async (c) => {
      this.held.set(key(c), c);
    },
    lost: (c) => {
      if (this.held.get(key(c))?.epoch === c.epoch) this.held.delete(key(c));
    },
    handOff: async (c) => {
      const h = this.held.get(key(c));
      this.held.delete(key(c));
      return h;
    },
    released: () => {},
  };
  start(): Promise<void> {
    return this.membership.start(this.host);
  }
  /** A clean stop: unregister, then give every claim back. */
  async stop(): Promise<void> {
    await this.membership.drain();
    await this.membership.release([...this.held.values()], (c) => this.held.delete(key(c)));
  }
  /** A death: the rounds end, nothing is unregistered or released. */
  async kill(): Promise<void> {
    await this.membership.release([], () => {});
    this.held.clear();
  }
}

async function owners(): Promise<Map<string, { owner: string | null; live: boolean }>> {
  const { rows } = await knex.raw<{ rows: Array<{ partition: number; owner: string | null; live: boolean }> }>(
    `select partition, owner, coalesce(lease_expires_at > now(), false) as live from ${schema}.partitions
      where group_id = ? and topic = ?`,
    [group, topic],
  );
  return new Map(rows.map((r) => [`${topic}:${r.partition}`, { owner: r.owner, live: r.live }]));
}

/**
 * Waits until the group has converged on `live`; returns seconds taken and the owners then.
 * Converged: every partition owned, with a live lease, by a live worker that holds it by its own
 * account and targets it, no worker holding or targeting anything else, and the owners are the
 * target the shared assignment computes from them (a fixed point: nothing moves any more).
 */
async function converge(what: string, live: SimWorker[], from = performance.now()) {
  const byId = new Map(live.map((w) => [w.id, w]));
  const deadline = from + GUARD_MS;
  for (;;) {
    const now = await owners();
    const current = new Map<string, string>();
    for (const [k, o] of now) if (o.owner !== null && o.live && byId.has(o.owner)) current.set(k, o.owner);
    const ok =
      current.size === P &&
      [...current].every(([k, id]) => byId.get(id)!.held.has(k)) &&
      live.every((w) => {
        const target = w.membership.view().target;
        return w.held.size === target.length && target.every((k) => current.get(k) === w.id);
      }) &&
      [
        ...assignPartitions(
          live.map((w) => ({ workerId: w.id })),
          partitions,
          current,
        ),
      ].every(([k, id]) => current.get(k) === id);
    if (ok) return { seconds: (performance.now() - from) / 1000, owners: now };
    if (performance.now() > deadline) throw new Error(`${what}: not converged after ${GUARD_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const moved = (a: Map<string, { owner: string | null }>, b: Map<string, { owner: string | null }>) =>
  [...b].filter(([k, o]) => a.get(k)?.owner !== o.owner).length;

async function xacts(): Promise<number> {
  const { rows } = await knex.raw<{ rows: Array<{ n: string }> }>(
    'select (xact_commit + xact_rollback)::text as n from pg_stat_database where datname = current_database()',
  );
  return Number(rows[0]!.n);
}

const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  console.log(line);
};
let n = 0;
const spawn = () => new SimWorker(`w${String(n).padStart(3, '0')}`, stores[n++ % storeCount]! as TransactionalStore<unknown>);

try {
  await stores[0]!.migrate();
  say(
    `membership bench: ${P} partitions, ${W} workers in one process, ${storeCount} stores x ${poolMax} connections; ` +
      `lease ${leaseMs} ms, heartbeat ${heartbeatIntervalMs} ms, session timeout ${sessionTimeoutMs} ms`,
  );
  const workers = Array.from({ length: W }, spawn);
  let t = performance.now();
  await Promise.all(workers.map((w) => w.start()));
  let step = await converge('cold start', workers, t);
  say(`cold start of ${W} at once: converged in ${step.seconds.toFixed(1)} s`);

  // Steady state: one full window of rounds with nothing changing.
  for (const m of calls.values()) m.clear();
  const x0 = await xacts();
  t = performance.now();
  await new Promise((r) => setTimeout(r, steadyMs));
  const seconds = (performance.now() - t) / 1000;
  const per = new Map<string, number>();
  for (const m of calls.values()) for (const [k, v] of m) per.set(k, (per.get(k) ?? 0) + v);
  // pg_stat_database is flushed by backends about once a second: a rate over the time between
  // the two readings, taken a little after the window, so that its counts have landed.
  await new Promise((r) => setTimeout(r, 1_500));
  const x1 = await xacts();
  const xSeconds = (performance.now() - t) / 1000;
  const total = [...per.values()].reduce((a, b) => a + b, 0);
  say(
    `steady state over ${seconds.toFixed(0)} s: ${(total / W / seconds).toFixed(2)} store statements/s per worker ` +
      `(${[...per].map(([k, v]) => `${k} ${(v / W / seconds).toFixed(2)}`).join(', ')}), ` +
      `${((x1 - x0) / xSeconds).toFixed(1)} PostgreSQL transactions/s in the database for all ${W} ` +
      `(${((x1 - x0) / W / xSeconds).toFixed(2)} per worker; nothing else may use the database meanwhile)`,
  );

  const before = step.owners;
  const joiner = spawn();
  workers.push(joiner);
  t = performance.now();
  await joiner.start();
  step = await converge('join', workers, t);
  const joinMoved = moved(before, step.owners);
  say(
    `1 joined (${W} -> ${W + 1}): converged in ${step.seconds.toFixed(1)} s, ${joinMoved} partitions moved ` +
      `(ceil(P/N) = ${Math.ceil(P / (W + 1))}; the newcomer took ${joiner.held.size}, the least a join can move)`,
  );

  let prev = step.owners;
  const leaver = workers.splice(Math.floor(workers.length / 2), 1)[0]!;
  t = performance.now();
  await leaver.stop();
  step = await converge('clean leave', workers, t);
  say(
    `1 stopped cleanly (${W + 1} -> ${W}): converged in ${step.seconds.toFixed(1)} s, ${moved(prev, step.owners)} partitions moved ` +
      `(it held ${[...prev.values()].filter((o) => o.owner === leaver.id).length}, the least a leave can move; ` +
      `ceil(P/N) = ${Math.ceil(P / W)})`,
  );

  prev = step.owners;
  const victim = workers.splice(Math.floor(workers.length / 3), 1)[0]!;
  const victimHeld = victim.held.size;
  t = performance.now();
  await victim.kill();
  step = await converge('death', workers, t);
  say(
    `1 died (${W} -> ${W - 1}): converged in ${step.seconds.toFixed(1)} s, ${moved(prev, step.owners)} partitions moved ` +
      `(it held ${victimHeld}, the least a death can move; ceil(P/N) = ${Math.ceil(P / (W - 1))})`,
  );
  await Promise.all(workers.map((w) => w.stop()));
} finally {
  await knex.raw(`drop schema if exists ${schema} cascade`).catch(() => {});
  await knex.destroy();
  await Promise.all(stores.map((s) => s.close()));
}
