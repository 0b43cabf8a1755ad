import type { Statement } from './statement.js';

/** The values {@link releaseSql} binds: the claim's fence. */
export interface ReleaseParams {
  lockTimeout: string;
  group: string;
  topic: string;
  partition: number;
  epoch: string;
  owner: string;
}

/**
 * Gives a partition up: clears owner and lease so another worker can claim it at once, but only if
 * this claim is still current (a fenced worker must not release its successor's claim). The epoch
 * is kept: the next claim increments it anyway, and a released claim can no longer commit because
 * the commit CAS also checks the owner. It returns a row only when it released the claim.
 */
export function releaseSql(schema: string): Statement<ReleaseParams, { released: boolean }> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout)
update ${schema}.partitions
   set owner = null, lease_expires_at = null, updated_at = now()
 where group_id = :group and topic = :topic and partition = :partition::int and epoch = :epoch::bigint and owner = :owner
   and exists (select 1 from settings)
returning true as released`;
}
