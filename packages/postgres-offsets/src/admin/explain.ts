/**
 * The history of one record in one group, from the tables that already hold the facts: every batch
 * whose committed range covers it (offset_log), every dead letter of it and what became of it
 * (dead_letters, admin_audit `dlq.requeue`), and every reset that moved the group's position across
 * it (admin_audit `offsets.reset` / `offsets.replay`). What an auditor asks: was it applied, in
 * which transaction, how many times, and why more than once.
 *
 * What the store cannot know: whether Kafka holds a record at that offset at all. A committed
 * range covers every offset in it, including the offsets of transaction markers, of aborted
 * transactions' records and of records that compaction removed. So when the admin has a reader,
 * the offset is fetched (read_committed, as workers read): an offset without a data record is
 * `no-record`, not applied, and the batches that covered it are `passed-over`. Without Kafka the
 * verdict comes from the store alone and `inKafka` says why Kafka was not asked.
 */
import { ConfigError } from '@oncely/core';
import {
  decodeOffsetLog,
  decodePartition,
  OFFSET_LOG_COLUMNS,
  type OffsetLogRow,
  PARTITION_COLUMNS,
  type PartitionRow,
  type Rows,
} from '../sql/rows.js';
import { type AdminContext, run } from './context.js';
import type { OffsetSource, RecordHistory, RecordHistoryEvent, RecordInKafka } from './types.js';

/** Which record: a group's view of topic/partition/offset. */
export interface RecordQuery {
  group: string;
  topic: string;
  partition: number;
  offset: bigint;
}

interface DeadLetterRow {
  id: string;
  created_at: Date;
  attempts: number;
  error_name: string;
  error_code: string | null;
  error_message: string;
  epoch: string | null;
  worker_id: string | null;
  replayed_at: Date | null;
}

interface AuditRow {
  id: string;
  at: Date;
  actor: string;
  action: string;
  details: {
    target?: string;
    result?: string;
    id?: string;
    error?: { message?: string } | string;
    partitions?: Array<{ topic: string; partition: number; from: string | null; to: string | null }>;
  };
}

function check(query: RecordQuery): void {
  if (typeof query.group !== 'string' || query.group === '') throw new ConfigError('explain: name the group.');
  if (typeof query.topic !== 'string' || query.topic === '') throw new ConfigError('explain: name the topic.');
  if (!Number.isInteger(query.partition) || query.partition < 0) {
    throw new ConfigError(`explain: a partition is an integer >= 0; got ${String(query.partition)}.`);
  }
  if (typeof query.offset !== 'bigint' || query.offset < 0n) {
    throw new ConfigError(`explain: an offset is an integer >= 0; got ${String(query.offset)}.`);
  }
}

/** Largest fetch for one look at an offset: one record batch is what it needs. */
const LOOKUP_MAX_BYTES = 64 * 1024;

/** What Kafka holds at the offset; never throws (an unreachable broker is an answer: unknown). */
export async function recordInKafka(
  kafka: OffsetSource | undefined,
  topic: string,
  partition: number,
  offset: bigint,
): Promise<RecordInKafka> {
  if (!kafka?.fetch) return { kind: 'unknown', reason: 'Kafka was not asked (no reader given)' };
  try {
    const [result] = await kafka.fetch([{ topic, partition, offset, maxBytes: LOOKUP_MAX_BYTES }], { maxWaitMs: 0 });
    if (!result) return { kind: 'unknown', reason: 'the fetch returned nothing' };
    if (result.kind === 'out-of-range') {
      if (result.logStartOffset !== undefined && offset < result.logStartOffset) {
        return { kind: 'deleted', logStartOffset: result.logStartOffset };
      }
      const [hw] = (await kafka.highWatermarks(topic, [partition])).values();
      return hw !== undefined && offset >= hw
        ? { kind: 'not-yet', highWatermark: hw }
        : { kind: 'unknown', reason: 'the broker answered out of range' };
    }
    const first = result.records[0];
    if (first?.offset === offset) {
      return {
        kind: 'record',
        timestamp: new Date(first.timestamp),
        keyBytes: first.key?.length ?? null,
        valueBytes: first.value?.length ?? null,
      };
    }
    if (first !== undefined || result.nextOffset > offset) {
      return { kind: 'no-record', nextRecordOffset: first?.offset ?? null };
    }
    if (offset >= result.highWatermark) return { kind: 'not-yet', highWatermark: result.highWatermark };
    return { kind: 'unknown', reason: 'the fetch returned no batch at this offset (an open transaction?)' };
  } catch (e) {
    // A partition the topic does not have fails like an unreachable leader; say which it is.
    const partitions = await kafka.partitions(topic).catch(() => undefined);
    if (partitions !== undefined && !partitions.includes(partition)) {
      return {
        kind: 'unknown',
        reason: `topic ${topic} has no partition ${partition} (it has ${partitions.length}: ${describePartitions(partitions)})`,
      };
    }
    return { kind: 'unknown', reason: `Kafka could not be read: ${(e as Error).message}` };
  }
}

/** `0-5`, or the list when it has gaps. */
function describePartitions(partitions: readonly number[]): string {
  const sorted = [...partitions].sort((a, b) => a - b);
  const contiguous = sorted.every((p, i) => p === sorted[0]! + i);
  return contiguous && sorted.length > 1 ? `${sorted[0]}-${sorted.at(-1)}` : sorted.join(',');
}

/** The record's history, oldest event first, with the verdict an operator reads first. */
export async function explainRecord(ctx: AdminContext, query: RecordQuery): Promise<RecordHistory> {
  check(query);
  const { group, topic, partition, offset } = query;
  const lookup = recordInKafka(ctx.kafka, topic, partition, offset);
  const key = { group, topic, partition, offset: offset.toString() };
  const db = ctx.knex;
  const [positionRows, batchRows, letterRows, auditRows] = await run(ctx, `explain ${topic}/${partition}/${offset}`, () =>
    Promise.all([
      db.raw<Rows<PartitionRow>>(
        `select ${PARTITION_COLUMNS} from ${ctx.s}.partitions p
        where p.group_id = :group and p.topic = :topic and p.partition = :partition::int`,
        key,
      ),
      // offset_log_applied (0003) serves this: (group, topic, partition, to_offset) where record_count > 0.
      db.raw<Rows<OffsetLogRow>>(
        `select ${OFFSET_LOG_COLUMNS} from ${ctx.s}.offset_log o
        where o.group_id = :group and o.topic = :topic and o.partition = :partition::int and o.record_count > 0
          and o.to_offset > :offset::bigint and o.from_offset <= :offset::bigint
        order by o.committed_at, o.id`,
        key,
      ),
      db.raw<Rows<DeadLetterRow>>(
        `select d.id::text as id, d.created_at, d.attempts, d.error_name, d.error_code, d.error_message,
              d.epoch::text as epoch, d.worker_id, d.replayed_at
         from ${ctx.s}.dead_letters d
        where d.group_id = :group and d.topic = :topic and d.partition = :partition::int and d."offset" = :offset::bigint
        order by d.id`,
        key,
      ),
      // Resets and replays that name this partition, and requeues of this record.
      db.raw<Rows<AuditRow>>(
        `select a.id::text as id, a.at, a.actor, a.action, a.details from ${ctx.s}.admin_audit a
        where a.group_id = :group
          and ((a.action in ('offsets.reset', 'offsets.replay')
                and exists (select 1 from jsonb_to_recordset(coalesce(a.details -> 'partitions', '[]'::jsonb))
                                     as x(topic text, partition int) where x.topic = :topic and x.partition = :partition::int))
            or (a.action = 'dlq.requeue' and a.details ->> 'topic' = :topic
                and (a.details ->> 'partition')::int = :partition::int and a.details ->> 'offset' = :offset))
        order by a.at, a.id`,
        key,
      ),
    ]),
  );
  const inKafka = await lookup;
  const noRecord = inKafka.kind === 'no-record';
  const position = positionRows.rows[0] ? decodePartition(positionRows.rows[0]) : null;
  const batches = batchRows.rows.map(decodeOffsetLog);
  const letters = letterRows.rows;
  const events: RecordHistoryEvent[] = [];

  // A dead letter is written in the transaction of the batch that moved past it: the first batch
  // of the same epoch and worker that covers the record and committed after the letter was made.
  const failedBatch = new Map<bigint, string>();
  const matched = new Set<string>();
  for (const d of letters) {
    const batch = batches.find(
      (b) =>
        !failedBatch.has(b.id) &&
        d.epoch !== null &&
        b.epoch === BigInt(d.epoch) &&
        b.workerId === d.worker_id &&
        b.committedAt.getTime() >= d.created_at.getTime(),
    );
    if (batch) {
      failedBatch.set(batch.id, d.id);
      matched.add(d.id);
    }
  }
  for (const b of batches) {
    const letter = failedBatch.get(b.id);
    if (noRecord && letter === undefined) {
      events.push({
        at: b.committedAt,
        kind: 'passed-over',
        batch: { id: b.id, fromOffset: b.fromOffset, toOffset: b.toOffset, recordCount: b.recordCount },
        epoch: b.epoch,
        workerId: b.workerId,
        detail: `passed over by batch ${b.id} [${b.fromOffset}, ${b.toOffset}) of ${b.workerId} (epoch ${b.epoch}): no data record at this offset`,
      });
      continue;
    }
    events.push({
      at: b.committedAt,
      kind: letter === undefined ? 'applied' : 'dead-lettered',
      batch: { id: b.id, fromOffset: b.fromOffset, toOffset: b.toOffset, recordCount: b.recordCount },
      epoch: b.epoch,
      workerId: b.workerId,
      ...(letter === undefined ? {} : { deadLetterId: BigInt(letter) }),
      detail:
        letter === undefined
          ? `committed in batch ${b.id} [${b.fromOffset}, ${b.toOffset}) by ${b.workerId} (epoch ${b.epoch})`
          : `dead-lettered as ${letter} in batch ${b.id} [${b.fromOffset}, ${b.toOffset}) by ${b.workerId} (epoch ${b.epoch})`,
    });
  }
  for (const d of letters) {
    if (!matched.has(d.id)) {
      // No batch of its transaction is in the log (it was purged, or the log was trimmed).
      events.push({
        at: d.created_at,
        kind: 'dead-lettered',
        epoch: d.epoch === null ? null : BigInt(d.epoch),
        workerId: d.worker_id,
        deadLetterId: BigInt(d.id),
        detail: `dead-lettered as ${d.id} by ${d.worker_id ?? 'an unknown worker'}`,
      });
    }
  }
  const requeueAudited = new Set<string>();
  for (const a of auditRows.rows) {
    if (a.action === 'dlq.requeue') {
      const applied = a.details.result === 'applied';
      if (applied && a.details.id) requeueAudited.add(a.details.id);
      const error = typeof a.details.error === 'string' ? a.details.error : a.details.error?.message;
      events.push({
        at: a.at,
        kind: applied ? 'requeued' : 'requeue-failed',
        auditId: BigInt(a.id),
        actor: a.actor,
        ...(a.details.id ? { deadLetterId: BigInt(a.details.id) } : {}),
        detail: applied
          ? `dead letter ${a.details.id} requeued by ${a.actor} and applied (audit ${a.id})`
          : `requeue of dead letter ${a.details.id} by ${a.actor} failed${error ? `: ${error}` : ''} (audit ${a.id})`,
      });
      continue;
    }
    const move = a.details.partitions?.find((p) => p.topic === topic && p.partition === partition);
    if (!move || move.to === null) continue;
    const to = BigInt(move.to);
    const from = move.from === null ? null : BigInt(move.from);
    const target = a.details.target ? ` (${a.details.target})` : '';
    if (from !== null && from > offset && to <= offset) {
      events.push({
        at: a.at,
        kind: 'rewound',
        auditId: BigInt(a.id),
        actor: a.actor,
        detail: `${a.action} by ${a.actor}${target}: position ${from} → ${to}, so the record is applied again (audit ${a.id})`,
      });
    } else if ((from === null || from <= offset) && to > offset) {
      events.push({
        at: a.at,
        kind: 'skipped',
        auditId: BigInt(a.id),
        actor: a.actor,
        detail: `${a.action} by ${a.actor}${target}: position ${from ?? '(none)'} → ${to}, past the record (audit ${a.id})`,
      });
    }
  }
  // A requeue applied before requeues were audited still shows through replayed_at.
  for (const d of letters) {
    if (d.replayed_at !== null && !requeueAudited.has(d.id)) {
      events.push({
        at: d.replayed_at,
        kind: 'requeued',
        deadLetterId: BigInt(d.id),
        detail: `dead letter ${d.id} requeued and applied`,
      });
    }
  }
  events.sort((x, y) => x.at.getTime() - y.at.getTime());

  const timesApplied = events.filter((e) => e.kind === 'applied' || e.kind === 'requeued').length;
  const pendingDeadLetters = letters.filter((d) => d.replayed_at === null).map((d) => BigInt(d.id));
  const passed = position !== null && position.nextOffset > offset;
  const state: RecordHistory['state'] =
    position === null
      ? 'unknown-partition'
      : !passed
        ? 'not-reached'
        : pendingDeadLetters.length > 0 && timesApplied === 0
          ? 'dead-lettered'
          : timesApplied > 0
            ? 'applied'
            : noRecord
              ? 'no-record'
              : 'skipped';
  return {
    ...query,
    state,
    timesApplied,
    pendingDeadLetters,
    position:
      position === null
        ? null
        : {
            nextOffset: position.nextOffset,
            epoch: position.epoch,
            owner: position.owner,
            highestCommitted: position.highestCommitted,
          },
    events,
    inKafka,
  };
}
