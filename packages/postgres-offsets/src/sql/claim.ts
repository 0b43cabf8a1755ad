import type { Statement } from './statement.js';

/** The values {@link claimSql} binds. Offsets are decimal strings (exact beyond 2^53). */
export interface ClaimParams {
  lockTimeout: string;
  group: string;
  topic: string;
  partition: number;
  initialOffset: string;
  owner: string;
  leaseMs: number;
  /** A re-claim by the same live process after a rewind: keeps `suspect` as it was. */
  reclaim: boolean;
}

/** The row a claim returns. int8 columns arrive as text. */
export interface ClaimRow {
  epoch: string;
  next_offset: string;
  max_committed_offset: string | null;
  suspect: boolean;
  crash_offset: string | null;
  crash_attempts: number;
}

/**
 * Takes a partition: one upsert, one round trip. A row never seen starts at the caller's
 * initialOffset with epoch 1; an existing row keeps its position and gets epoch + 1, which fences
 * every earlier holder (their commit CAS names the old epoch). The lease is computed from the
 * server's now(), so every worker compares leases against one clock.
 *
 * `set_config('lock_timeout', …, true)` is `SET LOCAL lock_timeout` in function form: evaluated in
 * the `settings` CTE before the insert can wait on the row, it bounds that wait in this
 * single-statement transaction without a second round trip.
 *
 * `suspect`: the previous holder never released the row (it crashed, or was taken over), or an
 * attempt counted by recordAttempt is pending. A re-claim by the same live process after a rewind
 * (`reclaim`) keeps the flag as it was. SET expressions read the old row, so no extra round trip.
 */
export function claimSql(schema: string): Statement<ClaimParams, ClaimRow> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout)
insert into ${schema}.partitions as p
  (group_id, topic, partition, next_offset, epoch, owner, lease_ms, lease_expires_at, updated_at)
select :group, :topic, :partition::int, :initialOffset::bigint, 1, :owner, :leaseMs::int,
       now() + :leaseMs::int * interval '1 millisecond', now()
  from settings
on conflict (group_id, topic, partition) do update
  set epoch = p.epoch + 1,
      owner = excluded.owner,
      lease_ms = excluded.lease_ms,
      lease_expires_at = excluded.lease_expires_at,
      suspect = case when :reclaim::boolean then p.suspect else (p.owner is not null or p.crash_attempts > 0) end,
      updated_at = now()
returning p.epoch::text as epoch, p.next_offset::text as next_offset, p.max_committed_offset::text as max_committed_offset,
          p.suspect, p.crash_offset::text as crash_offset, p.crash_attempts`;
}

/** The values {@link recordAttemptSql} binds: the claim's fence and the offset attempted. */
export interface RecordAttemptParams {
  lockTimeout: string;
  offset: string;
  group: string;
  topic: string;
  partition: number;
  epoch: string;
  owner: string;
}

/**
 * Counts one attempt at a record before its handler runs, outside any batch transaction, so that
 * the count survives the process dying. Only used after a suspect claim (rare), never on the hot
 * path. Zero rows: the claim is stale.
 */
export function recordAttemptSql(schema: string): Statement<RecordAttemptParams, { crash_attempts: number }> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout)
update ${schema}.partitions p
   set crash_attempts = case when p.crash_offset = :offset::bigint then p.crash_attempts + 1 else 1 end,
       crash_offset = :offset::bigint
  from settings
 where p.group_id = :group and p.topic = :topic and p.partition = :partition::int and p.epoch = :epoch::bigint
   and p.owner = :owner
returning p.crash_attempts`;
}
