/**
 * Gives a partition up: clears owner and lease so another worker can claim it at once, but only if
 * this claim is still current (a fenced worker must not release its successor's claim). The epoch
 * is kept: the next claim increments it anyway, and a released claim can no longer commit because
 * the commit CAS also checks the owner.
 *
 * Bindings: lock_timeout, group, topic, partition, epoch, owner.
 */
export function releaseSql(schema: string): string {
  return `
with settings as (select set_config('lock_timeout', ?, true) as lock_timeout)
update ${schema}.partitions
   set owner = null, lease_expires_at = null, updated_at = now()
 where group_id = ? and topic = ? and partition = ?::int and epoch = ?::bigint and owner = ?
   and exists (select 1 from settings)`;
}
