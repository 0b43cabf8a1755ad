/** Runs the real `oncely` binary (from source, under tsx) and shared helpers of the admin and CLI tests. */
import { resolve } from 'node:path';
import { loadMigrations } from '@oncely/postgres-offsets';
import { oncely } from '../support/cli.js';
import { kafkaClient, pgPool } from '../support/fixtures.js';

export { type CliResult, oncely, oncelyBounded, ROOT, startOncely, stderrText } from '../support/cli.js';
export const FIXTURES = resolve(import.meta.dirname, 'fixtures');

/** Runs `oncely <args> --json` and parses stdout; fails with the output when the exit code is not 0. */
export async function oncelyJson<T = unknown>(args: string[], env: Record<string, string | undefined> = {}): Promise<T> {
  const r = await oncely([...args, '--json'], env);
  if (r.code !== 0) throw new Error(`oncely ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export interface Payment {
  account: string;
  cents: number;
  seq: number;
}

/** Produces `perPartition` payments to each partition; seq continues from `from`. */
export async function producePayments(topic: string, partitions: number, perPartition: number, from = 0): Promise<void> {
  const producer = kafkaClient().producer();
  await producer.connect();
  try {
    for (let p = 0; p < partitions; p++) {
      await producer.send({
        topic,
        messages: Array.from({ length: perPartition }, (_, j) => {
          const seq = from + j;
          return { partition: p, value: JSON.stringify({ account: `acct-${(seq * 7 + p) % 13}`, cents: (seq % 50) + 1, seq }) };
        }),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Applies oncely's migrations up to `id` only, as an older oncely left the schema (not migrated further). */
export async function migrateUpTo(schema: string, id: number): Promise<void> {
  const pool = pgPool();
  await pool.query(`create schema ${schema}`);
  await pool.query(
    `create table ${schema}.migrations (id int primary key, name text not null, applied_at timestamptz not null default now())`,
  );
  for (const m of (await loadMigrations()).filter((m) => m.id <= id)) {
    await pool.query(m.sql.replaceAll(':ONCELY_SCHEMA', schema));
    await pool.query(`insert into ${schema}.migrations (id, name) values ($1, $2)`, [m.id, m.name]);
  }
}

/** The projection tables the fixture apps write: one row per record (idempotent) and every application (not). */
export async function makeProjectionTables(
  schema: string,
  suffix = '',
): Promise<{ records: string; applications: string; balances: string }> {
  const pool = pgPool();
  await pool.query(`create schema if not exists ${schema}`);
  const records = `${schema}.records${suffix}`;
  const applications = `${schema}.applications${suffix}`;
  const balances = `${schema}.balances${suffix}`;
  await pool.query(
    `create table ${records} (partition int, "offset" bigint, account text, cents int, seq int, primary key (partition, "offset"))`,
  );
  await pool.query(`create table ${applications} (id bigserial primary key, partition int, "offset" bigint)`);
  await pool.query(`create table ${balances} (account text primary key, cents bigint not null)`);
  return { records, applications, balances };
}

/** Every table row of oncely's schema, for before/after comparisons. */
export async function snapshot(schema: string): Promise<Record<string, unknown[]>> {
  const pool = pgPool();
  const out: Record<string, unknown[]> = {};
  for (const t of ['partitions', 'offset_log', 'checkpoints', 'admin_audit', 'dead_letters']) {
    out[t] = (await pool.query(`select * from ${schema}.${t} order by 1, 2, 3`)).rows;
  }
  return out;
}

/** Stored positions of a group as { 'topic:partition': next_offset }. */
export async function positions(schema: string, group: string): Promise<Record<string, string>> {
  const r = await pgPool().query<{ topic: string; partition: number; next_offset: string }>(
    `select topic, partition, next_offset::text from ${schema}.partitions where group_id = $1 order by topic, partition`,
    [group],
  );
  return Object.fromEntries(r.rows.map((x) => [`${x.topic}:${x.partition}`, x.next_offset]));
}

/** How many times each (partition, offset) was applied. */
export async function applicationCounts(table: string): Promise<Map<string, number>> {
  const r = await pgPool().query<{ partition: number; offset: string; n: number }>(
    `select partition, "offset"::text as offset, count(*)::int as n from ${table} group by 1, 2`,
  );
  return new Map(r.rows.map((x) => [`${x.partition}:${x.offset}`, x.n]));
}

/** Pauses so that two moments compared by the database's clock are surely apart (not an assertion on time). */
export const gap = (ms = 50) => new Promise((r) => setTimeout(r, ms));
