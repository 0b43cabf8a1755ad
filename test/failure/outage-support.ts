/** What both outage tests share: a ledger worker over given services, a paced payment stream, the audit. */
import { createWorker, KafkajsPartitionReader, PlatformaticPartitionReader, type Worker } from '@oncely/core';
import {
  auditLedger,
  createLedgerApp,
  createLedgerTables,
  highWatermarks,
  type Produced,
  producePayments,
  waitCaughtUp,
} from '@oncely/examples';
import { PostgresStore } from '@oncely/postgres-offsets';
import type { Knex } from 'knex';
import { expect } from 'vitest';
import { cleanup } from '../support/cleanup.js';
import { randomName } from '../support/fixtures.js';
import { captureLogger } from './support.js';

export interface LedgerRun {
  worker: Worker<Knex.Transaction>;
  reader: KafkajsPartitionReader | PlatformaticPartitionReader;
  store: PostgresStore;
  logs: string[];
  group: string;
  ledger: string;
  schema: string;
}

/** A migrated store and ledger tables at `databaseUrl`, and a started worker reading `brokers`. */
export async function startLedger(o: {
  databaseUrl: string;
  brokers: string[];
  topic: string;
  schema: string;
  /** The reader adapter. Default kafkajs. */
  reader?: 'kafkajs' | 'platformatic';
  /** Join the group (and ledger tables) of this run instead of making new ones: a second worker. */
  join?: LedgerRun;
  /** Membership timings other than the outage tests' short lease. */
  timings?: { leaseMs: number; sessionTimeoutMs: number; heartbeatIntervalMs: number };
}): Promise<LedgerRun> {
  const store = new PostgresStore({ connectionString: o.databaseUrl, schema: o.schema, poolMax: 6 });
  await store.migrate();
  const ledger = o.join?.ledger ?? randomName('ledger').toLowerCase();
  if (!o.join) await createLedgerTables(store.knex, ledger);
  const group = o.join?.group ?? randomName('ledger-group');
  const logger = captureLogger();
  const reader =
    o.reader === 'platformatic'
      ? new PlatformaticPartitionReader({ brokers: o.brokers, logger })
      : new KafkajsPartitionReader({ brokers: o.brokers, logger });
  const worker = createWorker(createLedgerApp({ topic: o.topic, group, schema: ledger }) as never, {
    store,
    reader,
    logger,
    // Short leases, so they expire during the outage and must be taken again afterwards.
    leaseMs: 3000,
    ...o.timings,
    fetchMaxWaitMs: 100,
    batchMaxRecords: 50,
    retryInitialDelayMs: 50,
    retryMaxDelayMs: 1000,
    closeOnStop: false,
  }) as Worker<Knex.Transaction>;
  cleanup(async () => {
    await worker.abort().catch(() => {});
    await reader.close().catch(() => {});
    await store.close().catch(() => {});
  });
  await worker.start();
  return { worker, reader, store, logs: logger.lines, group, ledger, schema: o.schema };
}

/** Starts a paced stream of payments (so the outage lands mid-stream); resolves with what was sent. */
export function paymentStream(brokers: string[], topic: string, count: number): Promise<Produced> {
  return producePayments({ brokers, topic, count, chunk: 100, pauseMs: 150 });
}

/** Waits until the stored positions reach the high watermarks, then audits row by row: 0 duplicates, 0 missing. */
export async function expectExactlyOnce(run: LedgerRun, brokers: string[], topic: string, produced: Produced): Promise<void> {
  await waitCaughtUp(run.store.knex, run.schema, run.group, topic, await highWatermarks(brokers, topic), { timeoutMs: 90_000 });
  const audit = await auditLedger(run.store.knex, run.ledger, produced);
  expect({
    duplicates: audit.duplicates,
    missing: audit.missing,
    unknown: audit.unknown,
    mismatches: audit.balanceMismatches,
  }).toEqual({
    duplicates: 0,
    missing: 0,
    unknown: 0,
    mismatches: [],
  });
  expect(audit.ok).toBe(true);
  expect(run.worker.state).toBe('running');
}

/** Every partition is owned by this worker again with a live lease (leases that expired were taken again). */
export async function expectLeasesHeld(run: LedgerRun, topic: string, workerId: string): Promise<void> {
  const { rows } = await run.store.knex.raw<{ rows: Array<{ owner: string; live: boolean; epoch: string }> }>(
    `select owner, lease_expires_at > now() as live, epoch::text from ${run.schema}.partitions where group_id = ? and topic = ?`,
    [run.group, topic],
  );
  expect(rows.length).toBeGreaterThan(0);
  for (const r of rows) expect({ owner: r.owner, live: r.live }).toEqual({ owner: workerId, live: true });
}
