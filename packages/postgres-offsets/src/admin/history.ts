import type { OffsetLogEntry, OffsetLogQuery } from '../read/index.js';
import type { Rows } from '../sql/rows.js';
import type { AdminContext, Db } from './context.js';
import { nonEmpty, tp } from './reset-plan.js';
import type { PointInTimePosition } from './types.js';

/** Committed batches, newest first (the offset log). */
export function offsetHistory(ctx: AdminContext, query: OffsetLogQuery): Promise<OffsetLogEntry[]> {
  return ctx.store.offsetLog(query);
}

/**
 * Where the group stood at `at`: per partition, the position of the last batch committed at or
 * before it, unless an executed reset moved it later (still before `at`). A partition with no
 * commit by then gets the start of its first later batch ('initial').
 */
export async function positionsAt(ctx: AdminContext, group: string, at: Date, db: Db): Promise<PointInTimePosition[]> {
  nonEmpty('group', group);
  const { rows: commits } = await db.raw<Rows<{ topic: string; partition: number; to_offset: string; committed_at: Date }>>(
    `select distinct on (topic, partition) topic, partition, to_offset::text, committed_at
       from ${ctx.s}.offset_log where group_id = :group and committed_at <= :at
      order by topic, partition, committed_at desc, id desc`,
    { group, at },
  );
  const { rows: firsts } = await db.raw<Rows<{ topic: string; partition: number; from_offset: string }>>(
    `select distinct on (topic, partition) topic, partition, from_offset::text
       from ${ctx.s}.offset_log where group_id = :group and committed_at > :at
      order by topic, partition, committed_at asc, id asc`,
    { group, at },
  );
  const { rows: resets } = await db.raw<Rows<{ at: Date; topic: string; partition: number; to_offset: string }>>(
    `select a.at, x.topic, x.partition, x."to" as to_offset
       from ${ctx.s}.admin_audit a
       cross join jsonb_to_recordset(a.details -> 'partitions') as x(topic text, partition int, "to" text)
      where a.group_id = :group and a.action in ('offsets.reset', 'offsets.replay') and a.at <= :at and x."to" is not null
      order by a.at asc, a.id asc`,
    { group, at },
  );
  const out = new Map<string, PointInTimePosition>();
  for (const f of firsts) {
    out.set(tp(f.topic, f.partition), {
      topic: f.topic,
      partition: f.partition,
      nextOffset: BigInt(f.from_offset),
      source: 'initial',
      at: null,
    });
  }
  for (const c of commits) {
    out.set(tp(c.topic, c.partition), {
      topic: c.topic,
      partition: c.partition,
      nextOffset: BigInt(c.to_offset),
      source: 'commit',
      at: c.committed_at,
    });
  }
  for (const r of resets) {
    const k = tp(r.topic, r.partition);
    const prev = out.get(k);
    if (prev === undefined || prev.source === 'initial' || (prev.at !== null && r.at >= prev.at)) {
      out.set(k, { topic: r.topic, partition: r.partition, nextOffset: BigInt(r.to_offset), source: 'reset', at: r.at });
    }
  }
  return [...out.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
}
