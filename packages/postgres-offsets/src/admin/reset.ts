/**
 * Reset execution: the inputs of a plan gathered (Kafka's log bounds outside any transaction, the
 * stored rows and the target's positions inside the reset's), reset-plan.ts's plan applied in one
 * transaction with the audit row. OffsetsAdmin's reset and replay both end here.
 */
import { ConfigError, type OffsetSpec } from '@oncely/core';
import { readPositions } from '../read/index.js';
import { decodePartition, PARTITION_COLUMNS, type PartitionRow, type Rows } from '../sql/rows.js';
import { checkpointRows, getCheckpoint, noCheckpoint } from './checkpoints.js';
import { type AdminContext, audit, type Db, run, transaction } from './context.js';
import { positionsAt } from './history.js';
import {
  checkTarget,
  describeTarget,
  type KafkaBounds,
  nonEmpty,
  planReset,
  type StoredPosition,
  scopeFrom,
  tp,
} from './reset-plan.js';
import type { AuditOptions, OffsetSource, ResetPlan, ResetRequest, TopicScope } from './types.js';

/** What a reset would do, per partition; changes nothing. */
export async function previewReset(ctx: AdminContext, request: ResetRequest): Promise<ResetPlan> {
  const { scope, bounds } = await prepare(ctx, request);
  return run(ctx, `plan reset of group ${request.group}`, async () =>
    gatherAndPlan(ctx, ctx.knex, request, scope, bounds, await storedRows(ctx, ctx.knex, request.group, scope, false)),
  );
}

/**
 * Applies a reset in one transaction (plan recomputed under the row locks, so `shift` and the
 * current positions are exact), bumps each moved partition's epoch keeping its owner, and records
 * the action in admin_audit. Returns the plan as applied.
 * `action` and `extra` go into the audit row (`offsets.replay` names its source group).
 */
export async function executeReset(
  ctx: AdminContext,
  request: ResetRequest,
  action: string,
  options: AuditOptions,
  extra: object = {},
): Promise<ResetPlan> {
  const { scope, bounds } = await prepare(ctx, request);
  return run(ctx, `reset group ${request.group}`, () =>
    transaction(ctx, async (trx) => {
      const stored = await storedRows(ctx, trx, request.group, scope, true);
      const plan = await gatherAndPlan(ctx, trx, request, scope, bounds, stored);
      const moves = plan.entries.filter((e) => e.changes && e.next !== null);
      if (moves.length > 0) {
        // Owner, lease and max_committed_offset are kept: ctx.isReplay stays right, and the owner
        // re-claims at the new position when its next commit or renewal finds the new epoch.
        await trx.raw(
          `insert into ${ctx.s}.partitions as p (group_id, topic, partition, next_offset, epoch, updated_at)
           select :group, u.topic, u.partition, u.next_offset, 1, clock_timestamp()
             from unnest(:topics::text[], :partitions::int[], :nextOffsets::bigint[]) as u(topic, partition, next_offset)
           on conflict (group_id, topic, partition) do update
             set next_offset = excluded.next_offset, epoch = p.epoch + 1, updated_at = clock_timestamp(),
                 stopped_offset = null, stopped_error = null, stopped_at = null`,
          {
            group: request.group,
            topics: moves.map((e) => e.topic),
            partitions: moves.map((e) => e.partition),
            nextOffsets: moves.map((e) => e.next!.toString()),
          },
        );
      }
      const details = {
        ...extra,
        target: describeTarget(request.to),
        partitions: moves.map((e) => ({
          topic: e.topic,
          partition: e.partition,
          from: e.current === null ? null : e.current.toString(),
          to: e.next!.toString(),
          ...(e.clamped ? { clamped: e.clamped } : {}),
        })),
      };
      const auditId = await audit(ctx, trx, action, request.group, details, options);
      return { ...plan, executed: true, auditId };
    }),
  );
}

/** Resolves the partitions a reset covers and asks Kafka for the log bounds (outside any transaction). */
async function prepare(ctx: AdminContext, request: ResetRequest): Promise<{ scope: TopicScope[]; bounds: KafkaBounds }> {
  nonEmpty('group', request?.group);
  checkTarget(request.to);
  const kafka = needKafka(ctx, 'a reset');
  let scope: TopicScope[];
  if (request.topics && request.topics.length > 0) {
    scope = [];
    for (const t of request.topics) {
      nonEmpty('topic', t.topic);
      const all = await kafka.partitions(t.topic);
      const wanted = t.partitions ?? all;
      const unknown = wanted.filter((p) => !all.includes(p));
      if (unknown.length > 0) {
        throw new ConfigError(`Topic ${t.topic} has partitions ${all.join(',')}; no partition ${unknown.join(',')}.`);
      }
      scope.push({ topic: t.topic, partitions: [...new Set(wanted)].sort((a, b) => a - b) });
    }
  } else {
    const parts: Array<{ topic: string; partition: number }> = await ctx.store.getPositions(request.group);
    if (request.to.kind === 'group') parts.push(...(await ctx.store.getPositions(request.to.group)));
    if (request.to.kind === 'checkpoint') {
      parts.push(...(await getCheckpoint(ctx, request.to.name, request.to.group ?? request.group)));
    }
    if (parts.length === 0) {
      throw new ConfigError(`Group ${request.group} has no stored positions; name the partitions with --topic T[:partitions].`);
    }
    scope = scopeFrom(parts, undefined);
  }
  const bounds: KafkaBounds = { logStart: new Map(), highWatermark: new Map() };
  const spec: OffsetSpec | undefined =
    request.to.kind === 'datetime'
      ? { timestamp: request.to.at.getTime() }
      : request.to.kind === 'duration'
        ? { timestamp: Date.now() - request.to.ms }
        : undefined;
  if (spec) bounds.byTime = new Map();
  for (const s of scope) {
    const parts = s.partitions!;
    const [starts, ends] = await Promise.all([
      kafka.resolveOffsets(s.topic, parts, 'earliest'),
      kafka.highWatermarks(s.topic, parts),
    ]);
    for (const p of parts) {
      bounds.logStart.set(tp(s.topic, p), starts.get(p) ?? 0n);
      bounds.highWatermark.set(tp(s.topic, p), ends.get(p) ?? 0n);
    }
    if (spec) for (const [p, o] of await kafka.resolveOffsets(s.topic, parts, spec)) bounds.byTime!.set(tp(s.topic, p), o);
  }
  return { scope, bounds };
}

/** The stored rows a plan starts from; `lock` takes them FOR UPDATE (executing). */
async function storedRows(
  ctx: AdminContext,
  db: Db,
  group: string,
  scope: TopicScope[],
  lock: boolean,
): Promise<Map<string, StoredPosition>> {
  const topics: string[] = [];
  const partitions: number[] = [];
  for (const s of scope) {
    for (const p of s.partitions!) {
      topics.push(s.topic);
      partitions.push(p);
    }
  }
  // FOR UPDATE in primary-key order: concurrent resets lock in the same order (no deadlock), and a
  // worker's in-flight CAS either finishes first or waits for us and then misses the new epoch.
  const { rows } = await db.raw<Rows<PartitionRow>>(
    `select ${PARTITION_COLUMNS}
       from ${ctx.s}.partitions p
       join unnest(:topics::text[], :partitions::int[]) as u(topic, partition) on u.topic = p.topic and u.partition = p.partition
      where p.group_id = :group
      order by p.topic, p.partition${lock ? ' for update of p' : ''}`,
    { topics, partitions, group },
  );
  return new Map(rows.map((r) => [tp(r.topic, r.partition), decodePartition(r)]));
}

/** Reads the positions a checkpoint, time-of-commit or group target names (on `db`), then plans. */
async function gatherAndPlan(
  ctx: AdminContext,
  db: Db,
  request: ResetRequest,
  scope: TopicScope[],
  bounds: KafkaBounds,
  stored: Map<string, StoredPosition>,
): Promise<ResetPlan> {
  const to = request.to;
  // Positions that come from the database are read here, inside the reset's transaction when executing.
  let fromDb: Map<string, bigint> | undefined;
  if (to.kind === 'checkpoint') {
    const rows = await checkpointRows(ctx, db, to.name, to.group ?? request.group);
    if (rows.length === 0) throw noCheckpoint(to.name, to.group ?? request.group);
    fromDb = new Map(rows.map((r) => [tp(r.topic, r.partition), r.nextOffset]));
  } else if (to.kind === 'time-of-commit') {
    fromDb = new Map((await positionsAt(ctx, request.group, to.at, db)).map((r) => [tp(r.topic, r.partition), r.nextOffset]));
  } else if (to.kind === 'group') {
    const positions = await readPositions(db, ctx.store.options.schema, to.group);
    fromDb = new Map(positions.map((p) => [tp(p.topic, p.partition), p.nextOffset]));
  }
  return planReset(request, scope, bounds, stored, fromDb);
}

/** Kafka, which every reset asks for log bounds, or a ConfigError saying how to pass it. */
function needKafka(ctx: AdminContext, what: string): OffsetSource {
  if (!ctx.kafka) {
    throw new ConfigError(`${what} needs Kafka (log start and high watermark): pass kafka (a PartitionReader) to OffsetsAdmin.`);
  }
  return ctx.kafka;
}
