/**
 * What the membership process tests share: a ledger topic and schemas, workers started as real
 * processes (`oncely run` or the ledger worker) that are SIGKILLed at cleanup if still running, and
 * a view of who owns each partition by the database's clock.
 */
import type { ChildProcess } from 'node:child_process';
import { createLedgerTables, type LedgerWorkerEnv, type LedgerWorkerProcess, spawnLedgerWorker } from '@oncely/examples';
import { PostgresStore } from '@oncely/postgres-offsets';
import knexFactory, { type Knex } from 'knex';
import { stopOnCleanup } from '../support/cleanup.js';
import { type CliResult, startOncely } from '../support/cli.js';
import { brokers, createTopic, databaseUrl, freshSchema, randomName } from '../support/fixtures.js';

export const LEDGER_APP = 'packages/examples/src/ledger/app.ts';

export interface LedgerSetup {
  topic: string;
  partitions: number;
  group: string;
  oncelySchema: string;
  ledgerSchema: string;
  knex: Knex;
  /** The environment of a ledger worker or `oncely run` of the ledger app. */
  env: LedgerWorkerEnv;
}

/** A topic of `partitions` partitions, the ledger's tables, fresh schemas and group. */
export async function setupLedger(partitions: number, prefix: string, knex: Knex): Promise<LedgerSetup> {
  const topic = await createTopic(partitions, { prefix });
  const oncelySchema = freshSchema(`${prefix}_oncely`);
  const ledgerSchema = freshSchema(`${prefix}_ledger`);
  const group = randomName(prefix);
  await createLedgerTables(knex, ledgerSchema);
  const store = new PostgresStore({ connectionString: databaseUrl(), schema: oncelySchema });
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
  return {
    topic,
    partitions,
    group,
    oncelySchema,
    ledgerSchema,
    knex,
    env: {
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      ONCELY_SCHEMA: oncelySchema,
      LEDGER_TOPIC: topic,
      LEDGER_GROUP: group,
      LEDGER_SCHEMA: ledgerSchema,
    },
  };
}

/** A knex pool for the assertions. */
export function assertionKnex(): Knex {
  return knexFactory({ client: 'pg', connection: databaseUrl(), pool: { min: 0, max: 3 } });
}

/** `oncely run` of the ledger app as a process, with its stderr so far. */
export interface RunProcess {
  child: ChildProcess;
  result: Promise<CliResult>;
  stderr(): string;
}

export function startRun(setup: LedgerSetup, args: string[]): RunProcess {
  // A later --log-level in args wins over this one.
  const { child, result } = startOncely(['run', LEDGER_APP, '--log-level', 'info', ...args], { ...setup.env });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return { child, result, stderr: () => err };
}

/** A ledger worker process (worker.ts) with phase and event lines, killed at cleanup. */
export function startLedgerWorker(setup: LedgerSetup, env: Partial<LedgerWorkerEnv> = {}): LedgerWorkerProcess {
  const w = spawnLedgerWorker({ ...setup.env, LEDGER_TRACE: '1', ...env });
  stopOnCleanup(w.child);
  return w;
}

/** One partition's row: its owner and whether its lease is live, by the database's clock. */
export interface Ownership {
  partition: number;
  owner: string | null;
  live: boolean;
}

export async function ownership(setup: LedgerSetup): Promise<Ownership[]> {
  const { rows } = await setup.knex.raw<{ rows: Ownership[] }>(
    `select partition, owner, coalesce(lease_expires_at > now(), false) as live
       from ${setup.oncelySchema}.partitions where group_id = ? and topic = ? order by partition`,
    [setup.group, setup.topic],
  );
  return rows;
}

/** Polls until `ok(rows)` holds; throws with the last rows after `timeoutMs` (a hang guard, not a timing assertion). */
export async function waitOwnership(
  setup: LedgerSetup,
  what: string,
  ok: (rows: Ownership[]) => boolean,
  timeoutMs: number,
): Promise<Ownership[]> {
  const deadline = Date.now() + timeoutMs;
  let rows: Ownership[] = [];
  for (;;) {
    rows = await ownership(setup);
    if (rows.length === setup.partitions && ok(rows)) return rows;
    if (Date.now() > deadline) throw new Error(`${what}: not reached after ${timeoutMs} ms; partitions: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every partition owned by one of `live` with a live lease. */
export const ownedBy =
  (...live: string[]) =>
  (rows: Ownership[]) =>
    rows.every((r) => r.owner !== null && r.live && live.includes(r.owner));

/** Timings short enough for tests: a dead worker's partitions move within ~3 s plus a round. */
export const ELASTIC_ENV = {
  LEDGER_MEMBERSHIP: 'elastic',
  LEDGER_LEASE_MS: '3000',
  LEDGER_HEARTBEAT_MS: '500',
  LEDGER_SESSION_TIMEOUT_MS: '3000',
  LEDGER_BATCH: '20',
} as const;

/** A running elastic ledger worker and what it believes it holds (from its claim/release/fenced lines). */
export interface GroupMember {
  id: string;
  proc: LedgerWorkerProcess;
  /** Partitions this worker holds by its own account. */
  held(): Set<number>;
}

export function startMember(setup: LedgerSetup, id: string, env: Partial<LedgerWorkerEnv> = {}): GroupMember {
  const proc = startLedgerWorker(setup, { ...ELASTIC_ENV, LEDGER_WORKER_ID: id, ...env });
  return {
    id,
    proc,
    held: () => {
      const held = new Set<number>();
      for (const line of proc.events()) {
        const [, kind, p, , action] = line.split(' ');
        const partition = Number(p);
        if (kind === 'claim') held.add(partition);
        else if (kind === 'release' || (kind === 'fenced' && action === 'dropped')) held.delete(partition);
      }
      return held;
    },
  };
}

/**
 * The group has converged on `live`: every partition is owned in the database by one of them with
 * a live lease, each owns its even share, and the workers' own accounts agree (no partition held
 * by two of them).
 */
export function converged(setup: LedgerSetup, live: readonly GroupMember[]) {
  return (rows: Ownership[]): boolean => {
    if (!ownedBy(...live.map((m) => m.id))(rows)) return false;
    const share = setup.partitions / live.length;
    for (const m of live) {
      const owned = rows.filter((r) => r.owner === m.id).map((r) => r.partition);
      if (owned.length < Math.floor(share) || owned.length > Math.ceil(share)) return false;
      const held = m.held();
      if (held.size !== owned.length || owned.some((p) => !held.has(p))) return false;
    }
    return true;
  };
}

/** Stops a member: SIGTERM (a drain) or SIGKILL; resolves once the process has exited. */
export async function stopMember(m: GroupMember, signal: 'SIGTERM' | 'SIGKILL'): Promise<{ code: number | null }> {
  m.proc.child.kill(signal);
  return m.proc.exited;
}
