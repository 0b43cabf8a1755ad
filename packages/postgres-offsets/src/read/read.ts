import type { Knex } from 'knex';
import {
  decodeOffsetLog,
  decodePartition,
  OFFSET_LOG_COLUMNS,
  type OffsetLogEntry,
  type OffsetLogRow,
  PARTITION_COLUMNS,
  type PartitionPosition,
  type PartitionRow,
} from '../sql/rows.js';
import type { OffsetLogQuery } from './types.js';

// Cold paths (CLI, status, runtime start-up): the knex builder, per STYLE.md, over sql/rows.ts's
// column lists. `db` may be a transaction (a reset reads another group's positions in its own).

/** The positions of a group (optionally one topic), ordered by topic and partition. */
export async function readPositions(
  db: Knex | Knex.Transaction,
  schema: string,
  group: string,
  topic?: string,
  partition?: number,
): Promise<PartitionPosition[]> {
  const query = db
    .withSchema(schema)
    .from('partitions as p')
    .select(db.raw(PARTITION_COLUMNS))
    .where('p.group_id', group)
    .orderBy([
      { column: 'p.topic', order: 'asc' },
      { column: 'p.partition', order: 'asc' },
    ]);
  if (topic !== undefined) query.andWhere('p.topic', topic);
  if (partition !== undefined) query.andWhere('p.partition', partition);
  const rows: PartitionRow[] = await query;
  return rows.map(decodePartition);
}

/** Committed batches, newest first. */
export async function readOffsetLog(db: Knex | Knex.Transaction, schema: string, q: OffsetLogQuery): Promise<OffsetLogEntry[]> {
  const query = db
    .withSchema(schema)
    .from('offset_log as o')
    .select(db.raw(OFFSET_LOG_COLUMNS))
    .where('o.group_id', q.group)
    .orderBy([
      { column: 'o.committed_at', order: 'desc' },
      // Qualified: a bare id would sort the select list's id::text.
      { column: 'o.id', order: 'desc' },
    ])
    .limit(q.limit ?? 100);
  if (q.topic !== undefined) query.andWhere('o.topic', q.topic);
  if (q.partition !== undefined) query.andWhere('o.partition', q.partition);
  if (q.before !== undefined) query.andWhere('o.committed_at', '<=', q.before);
  const rows: OffsetLogRow[] = await query;
  return rows.map(decodeOffsetLog);
}
