/**
 * Shared set-up for the store's integration tests: a migrated store on a fresh schema per file,
 * closed after the file, and small readers that look at the tables directly (not through the store).
 */
import type { Claim, ClaimInput } from '@oncely/core';
import { PostgresStore, type PostgresStoreOptions } from '@oncely/postgres-offsets';
import type pg from 'pg';
import { afterAll } from 'vitest';
import { databaseUrl, randomName } from '../support/fixtures.js';

const stores: PostgresStore[] = [];
afterAll(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** A store on this schema, closed after the file. */
export function newStore(schema: string, options: Partial<PostgresStoreOptions> = {}): PostgresStore {
  const store = new PostgresStore({ connectionString: databaseUrl(), schema, ...options } as PostgresStoreOptions);
  stores.push(store);
  return store;
}

/** A claim input on a random topic (so tests in one file never share a partition). */
export function claimInput(overrides: Partial<ClaimInput> = {}): ClaimInput {
  return {
    group: overrides.group ?? randomName('group'),
    topic: overrides.topic ?? randomName('topic'),
    partition: 0,
    workerId: 'worker-a',
    initialOffset: 0n,
    leaseMs: 30_000,
    ...overrides,
  };
}

export interface PartitionRow {
  next_offset: string;
  epoch: string;
  owner: string | null;
  lease_expires_at: Date | null;
  lease_ms: number | null;
  max_committed_offset: string | null;
  lease_in_future: boolean;
}

/** The partitions row of a claim, read with plain SQL. */
export async function partitionRow(pool: pg.Pool, schema: string, c: Pick<Claim, 'group' | 'topic' | 'partition'>) {
  const { rows } = await pool.query<PartitionRow>(
    `select next_offset::text, epoch::text, owner, lease_expires_at, lease_ms, max_committed_offset::text,
            coalesce(lease_expires_at > now(), false) as lease_in_future
       from ${schema}.partitions where group_id = $1 and topic = $2 and partition = $3`,
    [c.group, c.topic, c.partition],
  );
  return rows[0];
}

/** offset_log rows of a partition, oldest first. */
export async function logRows(pool: pg.Pool, schema: string, c: Pick<Claim, 'group' | 'topic' | 'partition'>) {
  const { rows } = await pool.query<{
    from_offset: string;
    to_offset: string;
    record_count: number;
    epoch: string;
    worker_id: string;
  }>(
    `select from_offset::text, to_offset::text, record_count, epoch::text, worker_id
       from ${schema}.offset_log where group_id = $1 and topic = $2 and partition = $3 order by id`,
    [c.group, c.topic, c.partition],
  );
  return rows;
}

/** Captures a rejection so a test can inspect the exact error object. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
