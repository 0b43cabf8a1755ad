import type { Statement } from './statement.js';

/** The values {@link markStoppedSql} binds: the claim's fence, where and why it stopped. */
export interface MarkStoppedParams {
  lockTimeout: string;
  group: string;
  topic: string;
  partition: number;
  epoch: string;
  owner: string;
  offset: string;
  error: string;
}

/**
 * Records that this claim's runner stopped the partition at `offset` (`oncely status` shows it),
 * only while the claim is current: a fenced worker must not mark its successor's partition. The
 * next claim and an offsets reset clear it.
 */
export function markStoppedSql(schema: string): Statement<MarkStoppedParams> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout)
update ${schema}.partitions
   set stopped_offset = :offset::bigint, stopped_error = :error, stopped_at = now(), updated_at = now()
 where group_id = :group and topic = :topic and partition = :partition::int and epoch = :epoch::bigint and owner = :owner
   and exists (select 1 from settings)`;
}
