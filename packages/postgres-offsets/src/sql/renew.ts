import type { Statement } from './statement.js';

/** The values {@link renewSql} binds: the claims as parallel arrays, in one order. */
export interface RenewParams {
  lockTimeout: string;
  leaseMs: number;
  groups: string[];
  topics: string[];
  partitions: number[];
  epochs: string[];
  owners: string[];
}

/**
 * Extends the leases of many claims in one statement (one round trip per renew tick, however many
 * partitions a worker owns). The claims arrive as parallel arrays unnested into rows; a claim whose
 * row still has its epoch and owner gets a fresh lease, and the final select returns the claims that
 * matched nothing: those were fenced (claimed by another worker, rewound) and must be dropped.
 *
 * The update locks rows only for this statement; batches never hold a partition row across a handler
 * (see runBatch), so a renew waits at most for another short statement.
 */
export function renewSql(schema: string): Statement<RenewParams, { group_id: string; topic: string; partition: number }> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout),
input as (
  select * from unnest(:groups::text[], :topics::text[], :partitions::int[], :epochs::bigint[], :owners::text[])
    as i(group_id, topic, partition, epoch, owner)
),
renewed as (
  update ${schema}.partitions p
     set lease_ms = :leaseMs::int,
         lease_expires_at = now() + :leaseMs::int * interval '1 millisecond',
         updated_at = now()
    from input i
   where p.group_id = i.group_id and p.topic = i.topic and p.partition = i.partition
     and p.epoch = i.epoch and p.owner = i.owner
     and exists (select 1 from settings)
  returning p.group_id, p.topic, p.partition
)
select i.group_id, i.topic, i.partition
  from input i
 where not exists (
   select 1 from renewed r where r.group_id = i.group_id and r.topic = i.topic and r.partition = i.partition
 )`;
}
