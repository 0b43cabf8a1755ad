import type { Knex } from 'knex';
import type { OffsetLogEntry, OffsetLogQuery, PartitionPosition } from './types.js';

// Cold paths (CLI, status, runtime start-up): the knex builder, per STYLE.md. int8 arrives as text.

/** The positions of a group (optionally one topic), ordered by topic and partition. */
export async function readPositions(
  knex: Knex,
  schema: string,
  group: string,
  topic?: string,
  partition?: number,
): Promise<PartitionPosition[]> {
  const query = knex
    .withSchema(schema)
    .from('partitions')
    .select(
      'group_id',
      'topic',
      'partition',
      knex.raw('next_offset::text as next_offset'),
      knex.raw('epoch::text as epoch'),
      'owner',
      'lease_expires_at',
      knex.raw('(lease_expires_at is null or lease_expires_at <= now()) as lease_expired'),
      knex.raw('max_committed_offset::text as max_committed_offset'),
      'updated_at',
    )
    .where('group_id', group)
    .orderBy([
      { column: 'topic', order: 'asc' },
      { column: 'partition', order: 'asc' },
    ]);
  if (topic !== undefined) query.andWhere('topic', topic);
  if (partition !== undefined) query.andWhere('partition', partition);
  const rows: Array<Record<string, unknown>> = await query;
  return rows.map((r) => ({
    group: r.group_id as string,
    topic: r.topic as string,
    partition: r.partition as number,
    nextOffset: BigInt(r.next_offset as string),
    epoch: BigInt(r.epoch as string),
    owner: (r.owner as string | null) ?? null,
    leaseExpiresAt: (r.lease_expires_at as Date | null) ?? null,
    leaseExpired: r.lease_expired as boolean,
    highestCommitted: r.max_committed_offset === null ? null : BigInt(r.max_committed_offset as string),
    updatedAt: r.updated_at as Date,
  }));
}

/** Committed batches, newest first. */
export async function readOffsetLog(knex: Knex, schema: string, q: OffsetLogQuery): Promise<OffsetLogEntry[]> {
  const query = knex
    .withSchema(schema)
    .from('offset_log')
    .select(
      knex.raw('id::text as id'),
      'group_id',
      'topic',
      'partition',
      knex.raw('from_offset::text as from_offset'),
      knex.raw('to_offset::text as to_offset'),
      'record_count',
      knex.raw('epoch::text as epoch'),
      'worker_id',
      'committed_at',
    )
    .where('group_id', q.group)
    .orderBy([
      { column: 'committed_at', order: 'desc' },
      // Qualified: a bare id would sort the select list's id::text.
      { column: 'offset_log.id', order: 'desc' },
    ])
    .limit(q.limit ?? 100);
  if (q.topic !== undefined) query.andWhere('topic', q.topic);
  if (q.partition !== undefined) query.andWhere('partition', q.partition);
  if (q.before !== undefined) query.andWhere('committed_at', '<=', q.before);
  const rows: Array<Record<string, unknown>> = await query;
  return rows.map((r) => ({
    id: BigInt(r.id as string),
    group: r.group_id as string,
    topic: r.topic as string,
    partition: r.partition as number,
    fromOffset: BigInt(r.from_offset as string),
    toOffset: BigInt(r.to_offset as string),
    recordCount: r.record_count as number,
    epoch: BigInt(r.epoch as string),
    workerId: r.worker_id as string,
    committedAt: r.committed_at as Date,
  }));
}
