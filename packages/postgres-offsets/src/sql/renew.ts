/**
 * Extends the leases of many claims in one statement (one round trip per renew tick, however many
 * partitions a worker owns). The claims arrive as parallel arrays unnested into rows; a claim whose
 * row still has its epoch and owner gets a fresh lease, and the final select returns the claims that
 * matched nothing: those were fenced (claimed by another worker, rewound) and must be dropped.
 *
 * The update locks rows only for this statement; batches never hold a partition row across a handler
 * (see runBatch), so a renew waits at most for another short statement.
 *
 * Bindings: lock_timeout, lease_ms, lease_ms, groups[], topics[], partitions[], epochs[], owners[].
 */
export function renewSql(schema: string): string {
  return `
with settings as (select set_config('lock_timeout', ?, true) as lock_timeout),
input as (
  select * from unnest(?::text[], ?::text[], ?::int[], ?::bigint[], ?::text[])
    as i(group_id, topic, partition, epoch, owner)
),
renewed as (
  update ${schema}.partitions p
     set lease_ms = ?::int,
         lease_expires_at = now() + ?::int * interval '1 millisecond',
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
