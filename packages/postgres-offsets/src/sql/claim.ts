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
 *
 * Bindings: lock_timeout, group, topic, partition, initial_offset, owner, lease_ms, lease_ms, reclaim.
 */
export function claimSql(schema: string): string {
  return `
with settings as (select set_config('lock_timeout', ?, true) as lock_timeout)
insert into ${schema}.partitions as p
  (group_id, topic, partition, next_offset, epoch, owner, lease_ms, lease_expires_at, updated_at)
select ?, ?, ?::int, ?::bigint, 1, ?, ?::int, now() + ?::int * interval '1 millisecond', now()
  from settings
on conflict (group_id, topic, partition) do update
  set epoch = p.epoch + 1,
      owner = excluded.owner,
      lease_ms = excluded.lease_ms,
      lease_expires_at = excluded.lease_expires_at,
      suspect = case when ?::boolean then p.suspect else (p.owner is not null or p.crash_attempts > 0) end,
      updated_at = now()
returning p.epoch::text as epoch, p.next_offset::text as next_offset, p.max_committed_offset::text as max_committed_offset,
          p.suspect, p.crash_offset::text as crash_offset, p.crash_attempts`;
}

/**
 * Counts one attempt at a record before its handler runs, outside any batch transaction, so that
 * the count survives the process dying. Only used after a suspect claim (rare), never on the hot
 * path. Zero rows: the claim is stale.
 *
 * Bindings: lock_timeout, offset, offset, group, topic, partition, epoch, owner.
 */
export function recordAttemptSql(schema: string): string {
  return `
with settings as (select set_config('lock_timeout', ?, true) as lock_timeout)
update ${schema}.partitions p
   set crash_attempts = case when p.crash_offset = ?::bigint then p.crash_attempts + 1 else 1 end,
       crash_offset = ?::bigint
  from settings
 where p.group_id = ? and p.topic = ? and p.partition = ?::int and p.epoch = ?::bigint and p.owner = ?
returning p.crash_attempts`;
}
