/**
 * The shape of a raw result, and for each table that more than one folder reads, one column list
 * and one decoder (pg-boss's JOB_COLUMNS): every reader of the table selects the same columns and
 * gets the same object. int8 columns are selected as text and decoded to bigint, exactly.
 *
 * The lists qualify every column with the table's alias (`p` for partitions, `o` for offset_log),
 * so a query that joins another table can use them as they are, and an `order by id` can never
 * mean the list's `id::text` instead of the column.
 */

/** What `knex.raw` resolves to with the pg client: the rows, typed by the statement's select list. */
export type Rows<T> = { rows: T[]; rowCount: number | null };

// partitions ----------------------------------------------------------------------------------

/** A row of the partitions table: one group/topic/partition's position and owner. */
export interface PartitionPosition {
  group: string;
  topic: string;
  partition: number;
  /** The next offset to fetch. */
  nextOffset: bigint;
  epoch: bigint;
  /** The worker holding the claim, or null when released or never claimed. */
  owner: string | null;
  leaseExpiresAt: Date | null;
  /** Whether the lease has expired by the database's clock (true when there is none). */
  leaseExpired: boolean;
  /** The highest next_offset ever committed (null before the first commit). */
  highestCommitted: bigint | null;
  updatedAt: Date;
}

/** The partitions columns every reader selects, from `<schema>.partitions p`. */
export const PARTITION_COLUMNS = `p.group_id, p.topic, p.partition, p.next_offset::text as next_offset, p.epoch::text as epoch,
  p.owner, p.lease_expires_at, (p.lease_expires_at is null or p.lease_expires_at <= now()) as lease_expired,
  p.max_committed_offset::text as max_committed_offset, p.updated_at`;

/** A row as {@link PARTITION_COLUMNS} selects it. */
export interface PartitionRow {
  group_id: string;
  topic: string;
  partition: number;
  next_offset: string;
  epoch: string;
  owner: string | null;
  lease_expires_at: Date | null;
  lease_expired: boolean;
  max_committed_offset: string | null;
  updated_at: Date;
}

/** The row as the API returns it. */
export function decodePartition(r: PartitionRow): PartitionPosition {
  return {
    group: r.group_id,
    topic: r.topic,
    partition: r.partition,
    nextOffset: BigInt(r.next_offset),
    epoch: BigInt(r.epoch),
    owner: r.owner ?? null,
    leaseExpiresAt: r.lease_expires_at ?? null,
    leaseExpired: r.lease_expired,
    highestCommitted: r.max_committed_offset === null ? null : BigInt(r.max_committed_offset),
    updatedAt: r.updated_at,
  };
}

// offset_log ----------------------------------------------------------------------------------

/** A row of the offset log: one committed batch. */
export interface OffsetLogEntry {
  id: bigint;
  group: string;
  topic: string;
  partition: number;
  fromOffset: bigint;
  toOffset: bigint;
  recordCount: number;
  epoch: bigint;
  workerId: string;
  committedAt: Date;
}

/** The offset_log columns every reader selects, from `<schema>.offset_log o`. */
export const OFFSET_LOG_COLUMNS = `o.id::text as id, o.group_id, o.topic, o.partition, o.from_offset::text as from_offset,
  o.to_offset::text as to_offset, o.record_count, o.epoch::text as epoch, o.worker_id, o.committed_at`;

/** A row as {@link OFFSET_LOG_COLUMNS} selects it. */
export interface OffsetLogRow {
  id: string;
  group_id: string;
  topic: string;
  partition: number;
  from_offset: string;
  to_offset: string;
  record_count: number;
  epoch: string;
  worker_id: string;
  committed_at: Date;
}

/** The row as the API returns it. */
export function decodeOffsetLog(r: OffsetLogRow): OffsetLogEntry {
  return {
    id: BigInt(r.id),
    group: r.group_id,
    topic: r.topic,
    partition: r.partition,
    fromOffset: BigInt(r.from_offset),
    toOffset: BigInt(r.to_offset),
    recordCount: r.record_count,
    epoch: BigInt(r.epoch),
    workerId: r.worker_id,
    committedAt: r.committed_at,
  };
}

// workers -------------------------------------------------------------------------------------

/** A row of the workers table: a worker as its last heartbeat left it. */
export interface WorkerEntry {
  group: string;
  workerId: string;
  host: string;
  pid: number;
  startedAt: Date;
  membership: 'static' | 'elastic';
  /** Its share as it reported it; null before its first full round. */
  target: number | null;
  /** What it held at its last heartbeat. */
  held: number;
  maxPartitions: number | null;
  /** Its share relative to the others' (elastic). */
  weight: number;
  sessionTimeoutMs: number | null;
  /**
   * How long after its last heartbeat it counts as gone once that heartbeat's PostgreSQL session
   * has ended (two of its rounds); null when it recorded none.
   */
  goneGraceMs: number | null;
  /** Milliseconds since its last heartbeat, by the database's clock. */
  heartbeatAgeMs: number;
}

/**
 * The workers columns every reader selects, from `<schema>.workers w` (an upsert's `returning`
 * included: its fresh heartbeat is 0 ms old).
 */
export const WORKER_COLUMNS = `w.group_id, w.worker_id, w.host, w.pid, w.started_at, w.membership, w.target, w.held,
  w.max_partitions, w.weight, w.session_timeout_ms, w.gone_grace_ms,
  greatest(0, floor(extract(epoch from (now() - w.heartbeat_at)) * 1000))::bigint::text as heartbeat_age_ms`;

/** A row as {@link WORKER_COLUMNS} selects it. */
export interface WorkerRow {
  group_id: string;
  worker_id: string;
  host: string;
  pid: number;
  started_at: Date;
  membership: 'static' | 'elastic';
  target: number | null;
  held: number;
  max_partitions: number | null;
  weight: number;
  session_timeout_ms: number | null;
  gone_grace_ms: number | null;
  heartbeat_age_ms: string;
}

/** The row as the API returns it. */
export function decodeWorker(r: WorkerRow): WorkerEntry {
  return {
    group: r.group_id,
    workerId: r.worker_id,
    host: r.host,
    pid: r.pid,
    startedAt: r.started_at,
    membership: r.membership,
    target: r.target,
    held: r.held,
    maxPartitions: r.max_partitions,
    weight: r.weight,
    sessionTimeoutMs: r.session_timeout_ms,
    goneGraceMs: r.gone_grace_ms,
    heartbeatAgeMs: Number(r.heartbeat_age_ms),
  };
}
