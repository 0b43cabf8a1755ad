import type { OffsetLogEntry, OffsetLogQuery } from '../read/index.js';
import { decodeOffsetLog, OFFSET_LOG_COLUMNS, type OffsetLogRow, type Rows } from '../sql/rows.js';
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
  // Per partition, the last batch committed by `at` and the first one after it.
  const { rows: lasts } = await db.raw<Rows<OffsetLogRow>>(
    `select distinct on (o.topic, o.partition) ${OFFSET_LOG_COLUMNS}
       from ${ctx.s}.offset_log o where o.group_id = :group and o.committed_at <= :at
      order by o.topic, o.partition, o.committed_at desc, o.id desc`,
    { group, at },
  );
  const { rows: nexts } = await db.raw<Rows<OffsetLogRow>>(
    `select distinct on (o.topic, o.partition) ${OFFSET_LOG_COLUMNS}
       from ${ctx.s}.offset_log o where o.group_id = :group and o.committed_at > :at
      order by o.topic, o.partition, o.committed_at asc, o.id asc`,
    { group, at },
  );
  const commits = lasts.map(decodeOffsetLog);
  const firsts = nexts.map(decodeOffsetLog);
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
      nextOffset: f.fromOffset,
      source: 'initial',
      at: null,
    });
  }
  for (const c of commits) {
    out.set(tp(c.topic, c.partition), {
      topic: c.topic,
      partition: c.partition,
      nextOffset: c.toOffset,
      source: 'commit',
      at: c.committedAt,
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
