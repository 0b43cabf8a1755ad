import type { Statement } from './statement.js';
import { goneSql } from './workers.js';

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
  /** Take the partition even from a live holder; the takeover is audited. */
  force: boolean;
  /** Who a forced takeover is audited as. */
  actor: string;
  /** A holder whose heartbeat session is gone and whose heartbeat is older than this is dead, its lease void (null: the lease only). */
  goneGraceMs: number | null;
}

/** A row of {@link claimSql}: the claim when `claimed`, else the live holder. int8 columns arrive as text. */
export interface ClaimRow {
  claimed: boolean;
  epoch: string | null;
  next_offset: string | null;
  max_committed_offset: string | null;
  suspect: boolean | null;
  crash_offset: string | null;
  crash_end: string | null;
  crash_attempts: number | null;
  crash_alone: number | null;
  /** Claimed: the holder taken from without a release (null if none). Not claimed: the live holder. */
  owner: string | null;
  /** Whether that holder's lease was live. */
  live: boolean;
  /** Claimed: whether that holder was taken for dead with a live lease (its sessions gone, see goneSql). */
  gone: boolean | null;
  /** Not claimed: what is left of the holder's lease, in ms. */
  lease_left_ms: string | null;
}

/**
 * Takes a partition when it is free (no row, or no owner: released), expired (lease ended by the
 * server's now()), already this owner's (a rewind re-claim, a restart under the same id) or when
 * forced: one statement, one round trip. A row never seen starts at the caller's initialOffset
 * with epoch 1; an existing row keeps its position and gets epoch + 1, which fences every earlier
 * holder (their commit CAS names the old epoch). Every lease is computed and compared on the
 * server's now(), so all workers use one clock.
 *
 * A live holder is left alone by the `where` of `on conflict do update`: Postgres evaluates it on
 * the newest row version after waiting for the row lock, so of two concurrent claims of a free
 * partition exactly one updates it; the other returns the holder instead (second branch). The main
 * query reads the statement's snapshot, i.e. the row as it was before this claim: that names the
 * holder taken from (`previous_owner`) and, under `force`, writes the admin_audit row of a takeover
 * from a live holder in the same statement.
 *
 * `set_config('lock_timeout', …, true)` is `SET LOCAL lock_timeout` in function form: evaluated in
 * the `settings` CTE before the insert can wait on the row, it bounds that wait in this
 * single-statement transaction without a second round trip.
 *
 * A holder whose process is gone (its heartbeat's PostgreSQL session ended and that heartbeat is
 * older than `goneGraceMs`, see goneSql in workers.ts) counts as expired even though its lease is
 * live: a SIGKILLed worker's partitions are taken in seconds, not after the lease. The epoch moves
 * on as with any claim, so if that holder was in fact alive, its next commit is fenced.
 *
 * `suspect`: the previous holder never released the row (it crashed, or was taken over), or crash
 * evidence written by recordInFlight is pending. A re-claim by the same live process after a rewind
 * (`reclaim`) keeps the flag as it was. SET expressions read the old row, so no extra round trip.
 */
export function claimSql(schema: string): Statement<ClaimParams, ClaimRow> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout),
claimed as (
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
        -- A new claim runs the partition again: a stop recorded by an earlier runner no longer holds.
        stopped_offset = null, stopped_error = null, stopped_at = null,
        updated_at = now()
    where p.owner is null or p.owner = excluded.owner or p.lease_expires_at is null or p.lease_expires_at <= now()
       or :force::boolean
       or exists (select 1 from ${schema}.workers w where w.group_id = p.group_id and w.worker_id = p.owner and ${goneSql('w')})
  returning p.group_id, p.topic, p.partition, p.epoch, p.next_offset, p.max_committed_offset, p.suspect,
            p.crash_offset, p.crash_end, p.crash_attempts, p.crash_alone, p.owner
),
taken as (
  select c.*, b.owner as previous_owner, coalesce(b.lease_expires_at > now(), false) as previous_live,
         b.owner is not null and coalesce(b.lease_expires_at > now(), false) and not :force::boolean as previous_gone
    from claimed c
    left join ${schema}.partitions b
      on b.group_id = c.group_id and b.topic = c.topic and b.partition = c.partition and b.owner is distinct from c.owner
),
audit as (
  insert into ${schema}.admin_audit (at, actor, action, group_id, details)
  select clock_timestamp(), :actor, 'partition.takeover', t.group_id,
         jsonb_build_object('topic', t.topic, 'partition', t.partition, 'from', t.previous_owner, 'to', t.owner,
                            'epoch', t.epoch::text, 'forced', true)
    from taken t
   where :force::boolean and t.previous_owner is not null and t.previous_live
)
select true as claimed, t.epoch::text as epoch, t.next_offset::text as next_offset,
       t.max_committed_offset::text as max_committed_offset, t.suspect, t.crash_offset::text as crash_offset,
       t.crash_end::text as crash_end, t.crash_attempts, t.crash_alone, t.previous_owner as owner,
       t.previous_live as live, t.previous_gone as gone, null::bigint as lease_left_ms
  from taken t
union all
select false, null, null, null, null, null, null, null, null, h.owner, true, null,
       greatest(0, floor(extract(epoch from (h.lease_expires_at - now())) * 1000))::bigint
  from ${schema}.partitions h
 where h.group_id = :group and h.topic = :topic and h.partition = :partition::int and not exists (select 1 from claimed)`;
}

/** The values {@link recordInFlightSql} binds: the claim's fence and the evidence (all null: cleared). */
export interface RecordInFlightParams {
  lockTimeout: string;
  from: string | null;
  to: string | null;
  deaths: number;
  alone: number;
  group: string;
  topic: string;
  partition: number;
  epoch: string;
  owner: string;
}

/**
 * Writes what the worker is about to apply after an unclean hand-over, outside any batch
 * transaction, so that it survives the process dying (see migration 0006). Only used on the first
 * transactions after a suspect claim, never on the hot path. Zero rows: the claim is stale.
 */
export function recordInFlightSql(schema: string): Statement<RecordInFlightParams, { updated: number }> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout)
update ${schema}.partitions p
   set crash_offset = :from::bigint,
       crash_end = :to::bigint,
       crash_attempts = :deaths::int,
       crash_alone = :alone::int
  from settings
 where p.group_id = :group and p.topic = :topic and p.partition = :partition::int and p.epoch = :epoch::bigint
   and p.owner = :owner
returning 1 as updated`;
}
