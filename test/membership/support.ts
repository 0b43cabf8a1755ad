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
