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
 * Bindings: lock_timeout, group, topic, partition, initial_offset, owner, lease_ms, lease_ms.
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
      updated_at = now()
returning p.epoch::text as epoch, p.next_offset::text as next_offset, p.max_committed_offset::text as max_committed_offset`;
}
