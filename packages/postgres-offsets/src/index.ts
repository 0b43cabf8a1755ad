/**
 * @oncely/postgres-offsets — the PostgreSQL store for oncely: positions, claims and epochs, the
 * commit compare-and-set, dead letters and offset history, in one schema (default `oncely`).
 *
 * ```ts
 * import { defineApp, json } from '@oncely/core';
 * import { PostgresStore, insertRows } from '@oncely/postgres-offsets';
 *
 * const store = new PostgresStore({ connectionString: process.env.DATABASE_URL!, schema: 'oncely' });
 * await store.migrate(); // safe from every worker at once
 *
 * const app = defineApp({ group: 'clicks' }).handleBatch({ topic: 'clicks', codec: json<Click>() }, async (batch, ctx) => {
 *   // ctx.tx is a Knex.Transaction: these rows commit together with the batch's offset, or not at all.
 *   await insertRows(ctx.tx, 'page_views', batch.messages.map((m) => ({ page: m.value.page, at: m.timestamp })));
 * });
 * ```
 *
 * Importing this package also types `ctx.tx` as `Knex.Transaction` in every handler (declaration
 * merging into core's `Register`).
 */
import type { Knex } from 'knex';

declare module '@oncely/core' {
  interface Register {
    tx: Knex.Transaction;
  }
}

export type {
  DeadLetterEntry,
  DeadLetterSelection,
  DeadLettersOptions,
  RequeueOutcome,
} from './admin/dead-letters.js';
export { DeadLetters } from './admin/dead-letters.js';
export type {
  AuditOptions,
  CheckpointEntry,
  CheckpointSummary,
  OffsetSource,
  OffsetsAdminOptions,
  PartitionStatus,
  PointInTimePosition,
  RecordHistory,
  RecordHistoryEvent,
  RecordInKafka,
  RecordQuery,
  ReplayRequest,
  ResetPlan,
  ResetPlanEntry,
  ResetRequest,
  ResetTarget,
  TopicScope,
  WorkerState,
  WorkerStatus,
} from './admin/index.js';
export { describeTarget, OffsetsAdmin } from './admin/index.js';
export type { CopyRowsOptions } from './bulk/copy-rows.js';
export { copyRows } from './bulk/copy-rows.js';
export type { InsertRowsOptions, Row } from './bulk/insert-rows.js';
export { insertRows } from './bulk/insert-rows.js';
export {
  ADMIN_SHUTDOWN,
  CANNOT_CONNECT_NOW,
  CONNECTION_EXCEPTION_CLASS,
  CRASH_SHUTDOWN,
  DEADLOCK_DETECTED,
  INVALID_AUTHORIZATION,
  INVALID_CATALOG_NAME,
  INVALID_PASSWORD,
  INVALID_SCHEMA_NAME,
  isConnectionError,
  LOCK_NOT_AVAILABLE,
  QUERY_CANCELED,
  SchemaTooNewError,
  SchemaTooOldError,
  SERIALIZATION_FAILURE,
  StoreError,
  TOO_MANY_CONNECTIONS,
  UNDEFINED_TABLE,
  UNIQUE_VIOLATION,
} from './errors.js';
export { SCHEMA_PATTERN } from './identifiers.js';
export type { MigrateResult, Migration } from './migrations/index.js';
export { loadMigrations } from './migrations/index.js';
export type { CompiledStoreOptions, PostgresStoreConnection, PostgresStoreOptions } from './options.js';
export type { OffsetLogEntry, OffsetLogQuery, PartitionPosition } from './read/index.js';
export { PostgresStore } from './store/index.js';
