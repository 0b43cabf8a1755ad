import type { ErrorClass } from '../errors.js';
import type { RawRecord } from '../reader/types.js';

/** Identifies one partition of one topic for one consumer group. */
export interface PartitionKey {
  group: string;
  topic: string;
  partition: number;
}

/** Proof of ownership of a partition, returned by a claim and required by every commit. */
export interface Claim extends PartitionKey {
  workerId: string;
  /** The fencing token: incremented by every claim and every rewind of the partition. */
  epoch: bigint;
  /** The next offset to fetch, as stored. */
  nextOffset: bigint;
  /**
   * The highest next_offset ever committed for this partition in this group (null before the first
   * commit). Only a record below it can be a replay; which ones are, says
   * {@link TransactionalStore.appliedRanges}.
   */
  highestCommitted: bigint | null;
  /**
   * The previous holder never released the partition (it died, or was taken over) or crash
   * evidence is pending: the runtime then writes what it applies first ({@link CrashEvidence})
   * before applying it, so a record that kills the process is recognised. Absent means false.
   */
  suspect?: boolean;
  /** What was in flight when earlier holders died without a commit after it (absent: nothing known). */
  crash?: CrashEvidence;
  /**
   * The holder this claim took the partition from without a release: one whose lease had expired
   * (it died or stalled), or, with `force`, a live one. Absent when the partition was free, released,
   * new, or already this worker's.
   */
  takenFrom?: {
    owner: string;
    leaseLive: boolean;
    /** The holder's lease was live but its process is gone (ClaimInput.goneGraceMs): taken without force. */
    gone?: boolean;
  };
}

export interface ClaimInput extends PartitionKey {
  workerId: string;
  /** Where a partition never seen before starts (resolved by the reader from the group's policy). */
  initialOffset: bigint;
  /** How long the claim holds without a commit or renewal. */
  leaseMs: number;
  /** The same live worker claims again after a fence (a rewind): keep the suspect flag as it is. */
  reclaim?: boolean;
  /**
   * Take the partition even from a live holder (an operator's deliberate takeover, `--force`): the
   * holder is fenced by the new epoch. A store that keeps an audit trail records every forced
   * takeover of a live holder. Default false.
   */
  force?: boolean;
  /**
   * Take the partition from a holder whose process is gone although its lease is live: a store
   * that can tell (PostgreSQL: the session of the holder's last heartbeat has ended) treats a
   * holder whose last heartbeat is older than this, in ms, as expired. The new epoch fences the
   * holder as after any claim. Default: only the lease counts.
   */
  goneGraceMs?: number;
}

/** How a heartbeat judges the other workers. */
export interface HeartbeatOptions {
  /**
   * Leave out of the live list a worker whose process is gone (see ClaimInput.goneGraceMs) once
   * its last heartbeat is older than this, in ms, before its session timeout. Default: only the
   * session timeout counts.
   */
  goneGraceMs?: number;
}

/** What a worker tells the store about itself on each heartbeat (elastic membership). */
export interface WorkerHeartbeat {
  group: string;
  workerId: string;
  host: string;
  pid: number;
  /** The first heartbeat of this process: its start time is recorded (a restart under the same id). */
  starting?: boolean;
  /** How the worker decides its partitions, for operators (`oncely status`). */
  membership: 'static' | 'elastic';
  /** How many partitions it targets (its share), for operators; null when it has no target list. */
  target: number | null;
  /** How many partitions it holds now, for operators. */
  held: number;
  /** The most partitions it takes (`maxPartitions`); null: no cap. The others respect it in their targets. */
  maxPartitions: number | null;
  /**
   * Its share relative to the others' (`weight`, a positive integer; absent: 1): elastic workers
   * share the partitions in proportion to their weights.
   */
  weight?: number;
}

/** A live worker of a group, as the store's clock sees it. */
export interface LiveWorker {
  workerId: string;
  host: string;
  pid: number;
  startedAt: Date;
  /** Time since its last heartbeat, by the store's clock, in ms. */
  heartbeatAgeMs: number;
  membership: 'static' | 'elastic';
  maxPartitions: number | null;
  /** Its weight as it reported it (1 when it reported none). */
  weight: number;
  /**
   * The partitions of the group it owns now with a live lease (by the store's clock), sorted by
   * topic and partition, read in the same snapshot as the list: elastic workers keep what they own
   * (a sticky target), so they must agree on who owns what as well as on who is live. Empty in the
   * answer to a static worker's heartbeat, whose target does not depend on it (a store may skip
   * reading it).
   */
  owned: Array<{ topic: string; partition: number }>;
}

/**
 * What a worker was applying when its process died, written by {@link TransactionalStore.recordInFlight}
 * before it applies the range after an unclean hand-over, so that it survives the death. A commit
 * clears it. It is evidence against a record only when `alone` deaths happened while that one
 * record was applied with nothing else in flight in the worker.
 */
export interface CrashEvidence {
  /** First offset of the range in flight. */
  from: bigint;
  /** End of the range (last record's offset + 1). */
  to: bigint;
  /** Deaths with this range (or one it was narrowed from) in flight, the attempt being written included. */
  deaths: number;
  /** Of those, consecutive deaths while `from` was the only record in flight in the worker. */
  alone: number;
}

/** The range a batch covers: committing it moves next_offset from fetchedFrom to nextOffset. */
export interface BatchRange {
  /** The position the batch was fetched from; must equal the stored next_offset (the CAS). */
  fetchedFrom: bigint;
  /** The new position: the fetch's nextOffset (last batch offset + 1), not "last record + 1". */
  nextOffset: bigint;
  /** Number of data records applied (for the offset log). */
  recordCount: number;
}

/** A record that failed for good, written in the same transaction that moves the offset past it. */
export interface DeadLetter {
  record: RawRecord;
  error: { name: string; message: string; code?: string; stack?: string };
  attempts: number;
  firstFailedAt: Date;
  lastFailedAt: Date;
}

/** Offsets [from, to) of one partition. */
export interface OffsetRange {
  from: bigint;
  /** Exclusive. */
  to: bigint;
}

/** A partition's stored row, as an operator or the runtime sees it. */
export interface PartitionState extends PartitionKey {
  nextOffset: bigint;
  epoch: bigint;
  owner: string | null;
  leaseExpiresAt: Date | null;
  highestCommitted: bigint | null;
}

/** Options for one batch transaction. */
export interface RunBatchOptions {
  /** Records to dead-letter in this transaction (the failure-policy issue). */
  deadLetters?: DeadLetter[];
  /** The transaction is abandoned (rolled back) when this aborts. */
  signal?: AbortSignal;
}

/**
 * Where oncely keeps positions and ownership, and the transaction a batch's writes share with the
 * advance of its offset. `Tx` is the handle a handler writes through (Knex.Transaction for
 * @oncely/postgres-offsets). Core knows no SQL: every guarantee is stated here and proven against
 * each implementation.
 */
export interface TransactionalStore<Tx> {
  /**
   * Takes the partition for this worker when it is free, released, expired (its lease ended by the
   * store's clock) or already this worker's: creates its row at initialOffset when absent,
   * increments its epoch (fencing every earlier holder), sets owner and lease. A partition whose
   * lease another worker holds is not taken: PartitionHeldError (owner, lease left), unless
   * `input.force`. Two concurrent claims of one free partition: exactly one succeeds.
   */
  claim(input: ClaimInput): Promise<Claim>;
  /**
   * Runs `work` in one transaction together with the compare-and-set that advances the stored
   * offset from range.fetchedFrom to range.nextOffset, guarded by claim.epoch, plus an offset-log
   * row. Either all of it commits or none of it. When the claim is stale (epoch or position
   * changed) the transaction rolls back and FencedError is thrown. Renews the lease.
   */
  runBatch<R>(claim: Claim, range: BatchRange, work: (tx: Tx) => Promise<R>, options?: RunBatchOptions): Promise<R>;
  /** Extends the leases of these claims; returns the ones that were lost (fenced). */
  renew(claims: readonly Claim[], leaseMs: number): Promise<Claim[]>;
  /**
   * Gives the partition up (owner cleared, lease ended) if this claim is still current. Resolves
   * true when it did, false when the claim was no longer current (another worker took the
   * partition over, an operator rewound it, or it was released already): then nothing changed, and
   * the runtime reports a fence (`detectedBy: 'release'`), not a release.
   */
  release(claim: Claim): Promise<boolean>;
  /**
   * The stored state of a partition, or null when it has no row. The runtime reads it after a
   * FencedError to tell a rewind (owner unchanged: re-claim at the new position) from a takeover
   * by another worker (drop the partition). Optional: without it a fenced partition is dropped.
   */
  position?(key: PartitionKey): Promise<PartitionState | null>;
  /**
   * Stores `evidence` for the partition outside any transaction, fenced by the claim (FencedError
   * when stale), so that it survives the process dying; null clears it. The next claim returns it
   * as `crash`, and any commit clears it. Optional: without it a record that kills the process is
   * retried forever.
   */
  recordInFlight?(claim: Claim, evidence: CrashEvidence | null): Promise<void>;
  /**
   * The parts of [from, to) in which this group applied records before (batches committed with
   * records; a store that keeps dead letters adds the requeued ones), merged and in order. A
   * record is a replay (`ctx.isReplay`) only when it lies in one: records the group skipped (it
   * started at 'latest', a reset jumped over them) or dead-lettered were never applied. The runtime
   * asks once per claim whose position is below highestCommitted. Optional: without it every
   * record below highestCommitted counts as applied.
   */
  appliedRanges?(key: PartitionKey, from: bigint, to: bigint): Promise<OffsetRange[]>;
  /**
   * Records that this claim's runner stopped the partition at `offset` (a record that failed for
   * good under onExhausted 'stop-partition', a batch that cannot be read), only while the claim is
   * current, so operators see it (`oncely status`). The next claim clears it. Optional: without it
   * only the stopping process knows (progress(), the 'partition-stopped' event).
   */
  markStopped?(claim: Claim, stop: { offset: bigint; error: string }): Promise<void>;
  /** A plain transaction without offset movement (dead-letter requeue). */
  transaction?<R>(work: (tx: Tx) => Promise<R>): Promise<R>;
  /**
   * Whether an error means the store itself failed (connection lost, lock timeout), even when a
   * handler's own statement threw it: such failures are retried without spending the record's
   * retry budget, so an outage never dead-letters good records.
   */
  isTransientError?(e: unknown): boolean;
  /**
   * What kind of failure a driver error is (see classifyError): 'transient' (connection lost, lock
   * timeout, serialization failure), 'record' (a data error of a handler's own statement), or
   * 'systemic' (an undefined table, a missing privilege: no retry fixes it, the partition stops);
   * undefined when the store cannot tell. Optional: without it isTransientError decides.
   */
  classifyError?(e: unknown): ErrorClass | undefined;
  /** What an operator does about a systemic driver error (for the message that stops a partition). */
  remedy?(e: unknown): string | undefined;
  /**
   * Registers or refreshes this worker (elastic membership) and returns the group's live workers,
   * itself included, sorted by workerId: those whose last heartbeat is younger than
   * `sessionTimeoutMs` by the store's clock, each with the partitions it owns with a live lease
   * (`owned`), all read at one instant (one snapshot), so that every worker computes its target
   * from a consistent view. Optional: without it only static membership works.
   */
  heartbeat?(worker: WorkerHeartbeat, sessionTimeoutMs: number, options?: HeartbeatOptions): Promise<LiveWorker[]>;
  /** Removes this worker's registration (a clean stop), so the others re-balance at once. */
  leave?(group: string, workerId: string): Promise<void>;
  /**
   * Checks the store answers (a round trip that needs its schema), for readiness probes; rejects
   * with the store's error when it does not. Optional: without it readiness cannot see the store.
   */
  ping?(): Promise<void>;
  /** Closes pools and connections the store opened. Idempotent. */
  close(): Promise<void>;
}
