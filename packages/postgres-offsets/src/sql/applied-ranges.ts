import type { Statement } from './statement.js';

/** The values {@link appliedRangesSql} binds: the partition and the range [from, to) asked about. */
export interface AppliedRangesParams {
  group: string;
  topic: string;
  partition: number;
  from: string;
  to: string;
}

/**
 * The merged ranges in [from, to) where a group applied records of a partition before: each batch
 * committed with records covers [from_offset, to_offset) (every record fetched in that range went
 * through the handler; the offsets between records are gaps), and a requeued dead letter covers
 * its own offset. Rows overlapping [from, to) are clipped to it and merged where they touch or
 * overlap (gaps-and-islands: a new island starts where a row begins after the furthest end seen so
 * far), so the runtime gets a handful of ranges however many batches there were.
 *
 * Only asked after a rewind (position below max_committed_offset), once per claim. The index
 * offset_log_applied (0003) makes it a range scan over the rows with to_offset > from, i.e. the
 * rewound part of the history: proportional to the replay that follows, not to all of it.
 */
export function appliedRangesSql(schema: string): Statement<AppliedRangesParams, { from_offset: string; to_offset: string }> {
  return `
with piece as (
  select greatest(o.from_offset, :from::bigint) as f, least(o.to_offset, :to::bigint) as t
    from ${schema}.offset_log o
   where o.group_id = :group and o.topic = :topic and o.partition = :partition::int and o.record_count > 0
     and o.to_offset > :from::bigint and o.from_offset < :to::bigint
  union all
  select d."offset", d."offset" + 1
    from ${schema}.dead_letters d
   where d.group_id = :group and d.topic = :topic and d.partition = :partition::int and d.replayed_at is not null
     and d."offset" >= :from::bigint and d."offset" < :to::bigint
),
ordered as (
  select f, t, max(t) over (order by f, t rows between unbounded preceding and 1 preceding) as reach from piece
),
island as (
  select f, t, sum(case when reach is null or f > reach then 1 else 0 end) over (order by f, t) as n from ordered
)
select min(f)::text as from_offset, max(t)::text as to_offset from island group by n order by min(f)`;
}
