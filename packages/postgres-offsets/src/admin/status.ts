import {
  decodePartition,
  decodeWorker,
  PARTITION_COLUMNS,
  type PartitionRow,
  type Rows,
  WORKER_COLUMNS,
  type WorkerRow,
} from '../sql/rows.js';
import { goneSql, liveSql, recordedGraceSql } from '../sql/workers.js';
import { type AdminContext, run } from './context.js';
import { tp } from './reset-plan.js';
import type { PartitionStatus, WorkerState, WorkerStatus } from './types.js';

/** Groups with stored positions, sorted. */
export async function groups(ctx: AdminContext): Promise<string[]> {
  return run(ctx, 'list groups', async () => {
    const { rows } = await ctx.knex.raw<Rows<{ group_id: string }>>(
      `select distinct group_id from ${ctx.s}.partitions order by group_id`,
    );
    return rows.map((r) => r.group_id);
  });
}

/**
 * Per group/topic/partition: position, high watermark and lag (when Kafka is configured), owner,
 * epoch, lease left and last commit age (both by the database's clock). Every group when none is given.
 * With Kafka, a partition of a topic the group reads that no worker has claimed yet (one just added
 * to the topic) is listed too, with no position and no owner.
 */
export async function status(ctx: AdminContext, query: { group?: string; topic?: string }): Promise<PartitionStatus[]> {
  const rows = await run(ctx, 'read status', async () => {
    const { rows } = await ctx.knex.raw<
      Rows<
        PartitionRow & {
          lease_left_ms: string | null;
          last_commit_at: Date | null;
          last_commit_age_ms: string | null;
          stopped_offset: string | null;
          stopped_error: string | null;
          stopped_at: Date | null;
          dead_letters: number;
        }
      >
    >(
      `select ${PARTITION_COLUMNS},
              p.stopped_offset::text as stopped_offset, p.stopped_error, p.stopped_at,
              (select count(*)::int from ${ctx.s}.dead_letters d
                where d.group_id = p.group_id and d.topic = p.topic and d.partition = p.partition
                  and d.replayed_at is null) as dead_letters,
              case when p.lease_expires_at is null then null
                   else greatest(0, floor(extract(epoch from (p.lease_expires_at - now())) * 1000))::bigint::text end as lease_left_ms,
              l.committed_at as last_commit_at,
              floor(extract(epoch from (now() - l.committed_at)) * 1000)::bigint::text as last_commit_age_ms
         from ${ctx.s}.partitions p
         left join lateral (
           select o.committed_at from ${ctx.s}.offset_log o
            where o.group_id = p.group_id and o.topic = p.topic and o.partition = p.partition
            order by o.committed_at desc limit 1
         ) l on true
        where (:group::text is null or p.group_id = :group::text) and (:topic::text is null or p.topic = :topic::text)
        order by p.group_id, p.topic, p.partition`,
      { group: query.group ?? null, topic: query.topic ?? null },
    );
    return rows;
  });
  const hw = new Map<string, bigint>();
  const unclaimed: PartitionStatus[] = [];
  if (ctx.kafka) {
    const byTopic = new Map<string, Set<number>>();
    const groupsOf = new Map<string, Set<string>>();
    for (const r of rows) {
      byTopic.set(r.topic, (byTopic.get(r.topic) ?? new Set()).add(r.partition));
      groupsOf.set(r.topic, (groupsOf.get(r.topic) ?? new Set()).add(r.group_id));
    }
    for (const [topic, parts] of byTopic) {
      const all = await ctx.kafka.partitions(topic).catch(() => [...parts]);
      for (const p of all) parts.add(p);
      for (const group of groupsOf.get(topic)!) {
        const known = new Set(rows.filter((r) => r.group_id === group && r.topic === topic).map((r) => r.partition));
        for (const partition of all) {
          if (known.has(partition)) continue;
          unclaimed.push({
            group,
            topic,
            partition,
            nextOffset: null,
            highWatermark: null,
            lag: null,
            owner: null,
            epoch: null,
            leaseLeftMs: null,
            lastCommitAt: null,
            lastCommitAgeMs: null,
            highestCommitted: null,
            stopped: null,
            deadLetters: 0,
          });
        }
      }
    }
    for (const [topic, parts] of byTopic) {
      // A deleted topic shows without a high watermark instead of failing the whole status.
      const marks = await ctx.kafka
        .highWatermarks(
          topic,
          [...parts].sort((a, b) => a - b),
        )
        .catch(() => new Map());
      for (const [p, o] of marks) hw.set(tp(topic, p), o);
    }
  }
  const claimed: PartitionStatus[] = rows.map((r) => {
    const p = decodePartition(r);
    const h = hw.get(tp(p.topic, p.partition)) ?? null;
    return {
      group: p.group,
      topic: p.topic,
      partition: p.partition,
      nextOffset: p.nextOffset,
      highWatermark: h,
      lag: h === null ? null : h > p.nextOffset ? h - p.nextOffset : 0n,
      owner: p.owner,
      epoch: p.epoch,
      leaseLeftMs: r.lease_left_ms === null ? null : Number(r.lease_left_ms),
      lastCommitAt: r.last_commit_at,
      lastCommitAgeMs: r.last_commit_age_ms === null ? null : Number(r.last_commit_age_ms),
      highestCommitted: p.highestCommitted,
      stopped:
        r.stopped_offset === null
          ? null
          : { offset: BigInt(r.stopped_offset), error: r.stopped_error ?? '', at: r.stopped_at ?? new Date(0) },
      deadLetters: r.dead_letters,
    };
  });
  for (const u of unclaimed) u.highWatermark = hw.get(tp(u.topic, u.partition)) ?? null;
  const order = (a: PartitionStatus, b: PartitionStatus) =>
    a.group < b.group ? -1 : a.group > b.group ? 1 : a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;
  return [...claimed, ...unclaimed].sort(order);
}

/**
 * The workers registered in the workers table (their heartbeats), every group's when none is
 * given: identity, heartbeat age, what each reports (target, held, weight), how many partitions the
 * database says it owns (a live lease), and whether it is live, gone or expired by the rule its
 * peers apply (liveSql and goneSql, with the session timeout and grace it recorded, or for a worker
 * of an older version that recorded no grace, two thirds of its session timeout), by the database's
 * clock.
 */
export async function workers(ctx: AdminContext, query: { group?: string }): Promise<WorkerStatus[]> {
  return run(ctx, 'read workers', async () => {
    const { rows } = await ctx.knex.raw<Rows<WorkerRow & { owned: number; live: boolean | null; gone: boolean }>>(
      `select ${WORKER_COLUMNS},
              (select count(*)::int from ${ctx.s}.partitions p
                where p.group_id = w.group_id and p.owner = w.worker_id and p.lease_expires_at > now()) as owned,
              ${liveSql('w', 'w.session_timeout_ms', recordedGraceSql('w'))} as live,
              ${goneSql('w', recordedGraceSql('w'))} as gone
         from ${ctx.s}.workers w
        where :group::text is null or w.group_id = :group::text
        order by w.group_id, w.worker_id`,
      { group: query.group ?? null },
    );
    return rows.map((r) => {
      const w = decodeWorker(r);
      const state: WorkerState | null = r.gone ? 'gone' : r.live === null ? null : r.live ? 'live' : 'expired';
      return { ...w, live: r.live, state, owned: r.owned };
    });
  });
}
