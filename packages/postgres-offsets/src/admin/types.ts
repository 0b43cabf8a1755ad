import type { PartitionReader } from '@oncely/core';
import type { PostgresStore } from '../store/store.js';

/**
 * What the admin asks Kafka: partitions of a topic, log start, high watermark, offsets for a
 * timestamp; and, when it can fetch (every PartitionReader can), whether an offset holds a record
 * (`explain`).
 */
export type OffsetSource = Pick<PartitionReader, 'partitions' | 'resolveOffsets' | 'highWatermarks'> &
  Partial<Pick<PartitionReader, 'fetch'>>;

/** Which partitions of a topic an operation covers; every partition of the topic when `partitions` is omitted. */
export interface TopicScope {
  topic: string;
  partitions?: number[];
}

/**
 * Where a reset moves each partition. The names follow `kafka-consumer-groups --reset-offsets`,
 * plus what only oncely can do: a named checkpoint, the positions committed at a past moment
 * (from the offset log), and another group's positions.
 */
export type ResetTarget =
  | { kind: 'offset'; offset: bigint }
  | { kind: 'earliest' }
  | { kind: 'latest' }
  /** The first offset whose record timestamp is at or after `at` (from Kafka). */
  | { kind: 'datetime'; at: Date }
  /** `--by-duration`: the datetime `ms` before now. */
  | { kind: 'duration'; ms: number }
  /** Relative to the stored position (read under the row lock when executed). */
  | { kind: 'shift'; by: bigint }
  /** A checkpoint of `group` (default: the group being reset). */
  | { kind: 'checkpoint'; name: string; group?: string }
  /** The positions the group had committed at `at` (offset log and earlier resets). */
  | { kind: 'time-of-commit'; at: Date }
  /** Another group's stored positions (`replay --from-group`). */
  | { kind: 'group'; group: string };

/** A reset: which group, which partitions, where to. */
export interface ResetRequest {
  group: string;
  /** Default: every partition the group has a stored position for (plus, for checkpoint and group targets, the source's). */
  topics?: TopicScope[];
  to: ResetTarget;
}

/** One partition's line of a reset plan. */
export interface ResetPlanEntry {
  topic: string;
  partition: number;
  /** The stored position, or null when the group has never seen this partition (a row is created). */
  current: bigint | null;
  /** Where the target put it before clamping; null when the target has no position for this partition. */
  requested: bigint | null;
  /** The new position (clamped to [logStart, highWatermark]); equals current when nothing changes. */
  next: bigint | null;
  logStart: bigint;
  highWatermark: bigint;
  /** Set when `requested` was outside the log and moved to its edge. */
  clamped?: 'log-start' | 'high-watermark';
  /** Records that will be applied again (current − next, when moving back). */
  reprocess: bigint;
  /** Records that will never be applied by this group (next − current, when moving forward). */
  skip: bigint;
  /** Whether executing changes this partition (a new position, or a row to create). */
  changes: boolean;
  owner: string | null;
  epoch: bigint | null;
  /** Why a partition is left alone, or what else to know. */
  note?: string;
}

/** A reset plan: printed without `--execute`, applied (in one transaction) with it. */
export interface ResetPlan {
  group: string;
  target: ResetTarget;
  /** The target in `kafka-consumer-groups` terms, for people. */
  description: string;
  executed: boolean;
  entries: ResetPlanEntry[];
  /** Total records to reprocess / to skip over all partitions. */
  reprocess: bigint;
  skip: bigint;
  /** The admin_audit row of an executed reset. */
  auditId?: bigint;
}

/** One partition of `oncely status`. */
export interface PartitionStatus {
  group: string;
  topic: string;
  partition: number;
  /** Null for a partition Kafka has but no worker of the group claimed yet (no row). */
  nextOffset: bigint | null;
  /** From Kafka; null when Kafka was not asked or the topic is gone. */
  highWatermark: bigint | null;
  /** highWatermark − nextOffset (never negative), or null without a high watermark. */
  lag: bigint | null;
  /** The worker holding the claim; null: released, never claimed, or (lease expired) see leaseLeftMs. */
  owner: string | null;
  /** Null for a partition never claimed. */
  epoch: bigint | null;
  /** Milliseconds the lease has left by the database's clock; 0 when expired, null when there is none. */
  leaseLeftMs: number | null;
  lastCommitAt: Date | null;
  /** Milliseconds since the last commit by the database's clock; null before the first commit. */
  lastCommitAgeMs: number | null;
  /** The highest position ever committed (records below it are replays). */
  highestCommitted: bigint | null;
  /**
   * Where a runner stopped the partition (a record that failed for good under onExhausted
   * 'stop-partition', a batch that cannot be read), or null: it stays stopped until the next claim
   * (a restart) or an offsets reset.
   */
  stopped: { offset: bigint; error: string; at: Date } | null;
  /** Dead letters of this partition not requeued yet (`oncely dlq list`). */
  deadLetters: number;
}

/** Whether a worker is live, gone (its process: its PostgreSQL session ended) or expired (silent past its session timeout). */
export type WorkerState = 'live' | 'gone' | 'expired';

/** A worker as its heartbeats left it in the workers table (`oncely status`). */
export interface WorkerStatus {
  group: string;
  workerId: string;
  host: string;
  pid: number;
  startedAt: Date;
  membership: 'static' | 'elastic';
  /** Milliseconds since its last heartbeat, by the database's clock. */
  heartbeatAgeMs: number;
  /**
   * Its heartbeat is younger than its session timeout and it is not gone (see `state`), by the
   * rule its peers apply; null when it reported no session timeout and is not gone.
   */
  live: boolean | null;
  /**
   * `live`; `gone`: the PostgreSQL session of its last heartbeat has ended and that heartbeat is
   * older than its `goneGraceMs` (two thirds of its session timeout when it recorded none: a worker
   * of a version before migration 0009); a killed process, whose peers take its partitions over
   * without waiting for the session timeout or the leases; `expired`: no heartbeat for longer than its
   * session timeout; null: unknown (it reported no session timeout). A session older than the
   * server, one the reading role may not inspect, or none recorded is no evidence of `gone`.
   */
  state: WorkerState | null;
  /** The session timeout it reported: silent this long, it is `expired`. */
  sessionTimeoutMs: number | null;
  /**
   * How long after its last heartbeat it is `gone` once that heartbeat's session ended, as it
   * recorded it (null: none recorded; then two thirds of its session timeout count).
   */
  goneGraceMs: number | null;
  /** Partitions it owns with a live lease, by the database. */
  owned: number;
  /** Partitions it holds, as it reported at its last heartbeat. */
  held: number;
  /** Partitions it targets (its share), as it reported; null before its first full round. */
  target: number | null;
  maxPartitions: number | null;
  /** Its share relative to the others' (elastic), as it reported. */
  weight: number;
}

/** A checkpoint's summary. */
export interface CheckpointSummary {
  name: string;
  group: string;
  createdAt: Date;
  partitions: number;
  topics: string[];
}

/** A checkpoint's position for one partition. */
export interface CheckpointEntry {
  name: string;
  group: string;
  topic: string;
  partition: number;
  nextOffset: bigint;
  createdAt: Date;
}

/** A group's position at a past moment, and where it came from. */
export interface PointInTimePosition {
  topic: string;
  partition: number;
  nextOffset: bigint;
  /** 'commit': the last batch committed at or before the moment; 'reset': an operator reset after it; 'initial': nothing was committed yet, the first batch's start. */
  source: 'commit' | 'reset' | 'initial';
  at: Date | null;
}

/** `replay`: start `group` at `fromGroup`'s positions, one of its checkpoints, or a datetime. */
export interface ReplayRequest {
  fromGroup: string;
  group: string;
  topics?: TopicScope[];
  /** Default: fromGroup's current positions. */
  to?: { kind: 'checkpoint'; name: string } | { kind: 'datetime'; at: Date };
  /** Allow a target group that already has stored positions (they are moved). Default false. */
  force?: boolean;
}

/** Who did it, for admin_audit. */
export interface AuditOptions {
  /** Default: `OffsetsAdmin`'s actor (`user@host`). */
  actor?: string;
}

/** Options of `new OffsetsAdmin(…)`. */
export interface OffsetsAdminOptions {
  /** The store whose schema and pool the admin uses (it does not close it). */
  store: PostgresStore;
  /** Kafka, for high watermarks, log starts and timestamps (e.g. a KafkajsPartitionReader). Needed by status lag, resets and replay. */
  kafka?: OffsetSource;
  /** Recorded in admin_audit. Default `<user>@<host>`. */
  actor?: string;
}

/** One thing that happened to a record (`oncely explain`), in time order. */
export interface RecordHistoryEvent {
  at: Date;
  /**
   * applied: a committed batch covered it; dead-lettered: its batch moved past it into the dead
   * letters; requeued / requeue-failed: an operator's requeue of its dead letter; rewound: a reset
   * moved the position back below it (it is applied again); skipped: a reset moved the position past
   * it without applying it.
   */
  kind: 'applied' | 'dead-lettered' | 'requeued' | 'requeue-failed' | 'rewound' | 'skipped' | 'passed-over';
  /** The offset_log row of the batch (applied, dead-lettered). */
  batch?: { id: bigint; fromOffset: bigint; toOffset: bigint; recordCount: number };
  epoch?: bigint | null;
  workerId?: string | null;
  deadLetterId?: bigint;
  /** The admin_audit row (rewound, skipped, requeued, requeue-failed). */
  auditId?: bigint;
  actor?: string;
  /** One line for people. */
  detail: string;
}

/** What `OffsetsAdmin.explain` answers about one record in one group. */
export interface RecordHistory {
  group: string;
  topic: string;
  partition: number;
  offset: bigint;
  /**
   * applied: the position is past it and it was applied at least once; dead-lettered: past it,
   * never applied, a dead letter pending; skipped: past it and never applied (a reset moved past
   * it); no-record: past it, and Kafka holds no data record at that offset (a transaction marker,
   * a record of an aborted transaction, or one removed by compaction: there was nothing to apply);
   * not-reached: the position is at or below it; unknown-partition: the group has no position for
   * the partition.
   */
  state: 'applied' | 'dead-lettered' | 'skipped' | 'no-record' | 'not-reached' | 'unknown-partition';
  /** Committed batches that covered it plus applied requeues: more than 1 only through rewinds and replays. */
  timesApplied: number;
  /** Its dead letters not yet requeued. */
  pendingDeadLetters: bigint[];
  /** The group's stored position of the partition now. */
  position: { nextOffset: bigint; epoch: bigint; owner: string | null; highestCommitted: bigint | null } | null;
  events: RecordHistoryEvent[];
  /** What Kafka holds at the offset now (read_committed), or why it was not asked. */
  inKafka: RecordInKafka;
}

/**
 * What Kafka holds at one offset: a data record; no data record (a transaction marker, a record
 * of an aborted transaction, or one compaction removed; `nextRecordOffset` is the next data record
 * the fetch saw, if any); nothing any more (below the log start: deleted by retention); nothing
 * yet (at or past the high watermark); or unknown (Kafka not asked or not reachable).
 */
export type RecordInKafka =
  | { kind: 'record'; timestamp: Date; keyBytes: number | null; valueBytes: number | null }
  | { kind: 'no-record'; nextRecordOffset: bigint | null }
  | { kind: 'deleted'; logStartOffset: bigint }
  | { kind: 'not-yet'; highWatermark: bigint }
  | { kind: 'unknown'; reason: string };
