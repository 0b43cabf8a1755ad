import { ConfigError } from '@oncely/core';
import type { OffsetLogEntry, OffsetLogQuery } from '../read/index.js';
import { type AuditEntry, defaultActor, readAuditLog } from './audit.js';
import { createCheckpoint, deleteCheckpoint, getCheckpoint, listCheckpoints } from './checkpoints.js';
import { type AdminContext, type Db, run } from './context.js';
import { explainRecord, type RecordQuery } from './explain.js';
import { offsetHistory, positionsAt } from './history.js';
import { replayIntoGroup } from './replay.js';
import { executeReset, previewReset } from './reset.js';
import { groups, status, workers } from './status.js';
import type {
  AuditOptions,
  CheckpointEntry,
  CheckpointSummary,
  OffsetsAdminOptions,
  PartitionStatus,
  PointInTimePosition,
  RecordHistory,
  ReplayRequest,
  ResetPlan,
  ResetRequest,
  WorkerStatus,
} from './types.js';

/**
 * Operator actions on stored positions: status, resets (plan, then execute in one transaction),
 * checkpoints, offset history and replay into a new group. The `oncely` CLI is a thin layer over it,
 * and it is a thin layer over its parts: status.ts, reset.ts (over the pure reset-plan.ts),
 * checkpoints.ts, history.ts, replay.ts and audit.ts.
 *
 * An executed reset locks the affected partition rows (`SELECT … FOR UPDATE`, in a stable order),
 * moves each position, **bumps each epoch and keeps the owner**, and writes an admin_audit row, all
 * in one transaction under `SET LOCAL lock_timeout`. A worker's commit CAS (epoch + position) either
 * committed before the lock (the reset then starts from the position it committed) or waits for the
 * reset and matches nothing (new epoch): it rolls back, and the worker, still the owner, re-claims at
 * the reset position. Running workers never need to be stopped.
 *
 * @example
 * const admin = new OffsetsAdmin({ store, kafka: reader });
 * const plan = await admin.planReset({ group: 'ledger', to: { kind: 'shift', by: -100n } });
 * await admin.executeReset({ group: 'ledger', to: { kind: 'shift', by: -100n } }, { actor: 'alice' });
 */
export class OffsetsAdmin {
  readonly #ctx: AdminContext;

  constructor(options: OffsetsAdminOptions) {
    if (!options?.store) throw new ConfigError('OffsetsAdmin needs a store: new OffsetsAdmin({ store: new PostgresStore(…) }).');
    this.#ctx = Object.freeze({
      store: options.store,
      knex: options.store.knex,
      // The schema was validated by the store's options; it is the only identifier in these texts.
      s: options.store.options.quotedSchema,
      lockTimeout: String(options.store.options.lockTimeoutMs),
      kafka: options.kafka,
      actor: options.actor ?? defaultActor(),
    });
  }

  /** Groups with stored positions, sorted. */
  async groups(): Promise<string[]> {
    return groups(this.#ctx);
  }

  /**
   * Per group/topic/partition: position, high watermark and lag (when Kafka is configured), owner,
   * epoch, lease left and last commit age (both by the database's clock). Every group when none is given.
   */
  async status(query: { group?: string; topic?: string } = {}): Promise<PartitionStatus[]> {
    return status(this.#ctx, query);
  }

  /**
   * The group's workers (every group's when none is given) as their heartbeats left them: id,
   * host, pid, heartbeat age, live or dead by the database's clock, partitions owned, held and
   * targeted. A dead worker is listed until ten session timeouts (at least 5 min) have passed.
   */
  async workers(query: { group?: string } = {}): Promise<WorkerStatus[]> {
    return workers(this.#ctx, query);
  }

  /**
   * The history of one record in a group: every committed batch that covered it, its dead letters
   * and requeues, and the resets that moved the position across it, in time order, with a verdict
   * (applied how many times, dead-lettered, skipped, not reached). Reads Postgres only.
   */
  async explain(query: RecordQuery): Promise<RecordHistory> {
    return explainRecord(this.#ctx, query);
  }

  /** What a reset would do, per partition; changes nothing. */
  async planReset(request: ResetRequest): Promise<ResetPlan> {
    return previewReset(this.#ctx, request);
  }

  /**
   * Applies a reset in one transaction (plan recomputed under the row locks, so `shift` and the
   * current positions are exact), bumps each moved partition's epoch keeping its owner, and records
   * the action in admin_audit. Returns the plan as applied.
   */
  async executeReset(request: ResetRequest, options: AuditOptions = {}): Promise<ResetPlan> {
    return executeReset(this.#ctx, request, 'offsets.reset', options);
  }

  /** Saves the group's current positions (optionally some topics) under a name. */
  async createCheckpoint(
    name: string,
    group: string,
    options: AuditOptions & { topics?: string[] } = {},
  ): Promise<CheckpointSummary> {
    return createCheckpoint(this.#ctx, name, group, options);
  }

  /** The group's checkpoints, newest first. */
  async listCheckpoints(group: string): Promise<CheckpointSummary[]> {
    return listCheckpoints(this.#ctx, group);
  }

  /** One checkpoint's positions; ConfigError when it does not exist. */
  async getCheckpoint(name: string, group: string): Promise<CheckpointEntry[]> {
    return getCheckpoint(this.#ctx, name, group);
  }

  /** Deletes a checkpoint; ConfigError when it does not exist. Returns the number of partitions it held. */
  async deleteCheckpoint(name: string, group: string, options: AuditOptions = {}): Promise<number> {
    return deleteCheckpoint(this.#ctx, name, group, options);
  }

  /** Committed batches, newest first (the offset log). */
  offsetHistory(query: OffsetLogQuery): Promise<OffsetLogEntry[]> {
    return offsetHistory(this.#ctx, query);
  }

  /** Operator actions recorded in admin_audit, newest first. */
  async auditLog(query: { group?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    return run(this.#ctx, 'read admin_audit', () => readAuditLog(this.#ctx.knex, this.#ctx.s, query));
  }

  /**
   * Where the group stood at `at`: per partition, the position of the last batch committed at or
   * before it, unless an executed reset moved it later (still before `at`). A partition with no
   * commit by then gets the start of its first later batch ('initial').
   */
  async positionsAt(group: string, at: Date, db: Db = this.#ctx.knex): Promise<PointInTimePosition[]> {
    return positionsAt(this.#ctx, group, at, db);
  }

  /** Plans (or, with `execute`, applies) starting `group` at another group's positions, checkpoint or a datetime. */
  async replayIntoGroup(request: ReplayRequest, options: AuditOptions & { execute?: boolean } = {}): Promise<ResetPlan> {
    return replayIntoGroup(this.#ctx, request, options);
  }
}
