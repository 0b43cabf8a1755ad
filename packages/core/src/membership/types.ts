import type { Logger } from '../logger.js';
import type { OffsetSpec, PartitionReader, TopicPartition } from '../reader/types.js';
import type { Claim, LiveWorker, TransactionalStore } from '../store/types.js';

/**
 * Decides which partitions a worker owns and keeps them: `static` is told its partitions, `elastic`
 * agrees on an assignment with the group's other live workers through the store. Both take only
 * free, released or expired partitions, renew every held lease in one statement per tick, hand
 * off what they no longer target and re-claim what they target but lost once it is free again.
 */
export interface Membership {
  readonly kind: 'static' | 'elastic';
  /**
   * The first round: registers (elastic), takes what is targeted and free, and starts keeping the
   * claims (renewal, hand-offs, re-claims) until {@link drain}. Rejects when the first round fails
   * (the store is down: start() may be called again) or when a partition is held and the
   * membership is told to fail then (static `onHeld: 'fail'`).
   */
  start(host: MembershipHost): Promise<void>;
  /**
   * The worker is stopping: no more claims or hand-offs, the registration is removed (elastic: the
   * others re-balance at once), the held leases are still renewed until {@link release}.
   */
  drain(): Promise<void>;
  /**
   * Ends renewal and gives `claims` up, each even if another fails (then rejects with the first
   * failure). `released` is told of each: false when the store released nothing (the claim was no
   * longer current).
   */
  release(claims: readonly Claim[], released: (claim: Claim, released: boolean) => void): Promise<void>;
  /** What the membership is doing now: its target and the partitions it waits for. */
  view(): MembershipView;
}

/** What a membership asks of the worker that runs the partitions. */
export interface MembershipHost {
  /** The claims the worker holds now (partitions applied, or being handed off). */
  held(): readonly Claim[];
  /** A partition was claimed: start applying it. */
  gained(claim: Claim): Promise<void>;
  /** Renewal found the claim lost: the runner re-checks it (a rewind is re-claimed, a takeover dropped). */
  lost(claim: Claim): void;
  /**
   * The partition is no longer targeted: stop applying it once its in-flight batch has committed.
   * Resolves with the claim to release (its epoch may have moved by a rewind), or undefined when
   * the partition was lost meanwhile (nothing to release).
   */
  handOff(claim: Claim): Promise<Claim | undefined>;
  /**
   * A claim was given up (hand-off or stop): `released` false when the store found it no longer
   * current (another worker holds the partition, or it was rewound), so nothing was released.
   */
  released(claim: Claim, reason: 'handoff' | 'stop', released: boolean): void;
  /**
   * The membership cannot go on: a round failed with an error no retry fixes (a privilege taken
   * away, one of oncely's tables gone). The worker stops with it.
   */
  fail?(error: Error): void;
}

/** A snapshot of a membership, for progress and tests. */
export interface MembershipView {
  kind: 'static' | 'elastic';
  /** The partitions this worker should own now (`topic:partition`), sorted. */
  target: string[];
  /** Targeted partitions another worker still holds, with the holder (null: unknown). */
  waiting: Array<{ partition: string; owner: string | null }>;
  /** Elastic: the live workers of the group as of the last heartbeat, sorted. */
  liveWorkers?: string[];
}

/** What a membership works with: the group, its topics, the reader, the store and the worker's identity. */
export interface MembershipContext<Tx> {
  group: string;
  topics: readonly string[];
  reader: PartitionReader;
  store: TransactionalStore<Tx>;
  workerId: string;
  leaseMs: number;
  /** How often leases are renewed and (elastic) the heartbeat is written, in ms. */
  heartbeatIntervalMs: number;
  /** A worker whose last heartbeat is older than this is dead (elastic), in ms. */
  sessionTimeoutMs: number;
  /** How often the topics' partitions are listed again (new partitions), in ms. */
  partitionRefreshMs: number;
  /** Where a partition never seen by this group starts. */
  initialOffset: OffsetSpec;
  logger: Logger;
}

/** How a membership computes its target each round; the rest of the work is shared (see claims.ts). */
export interface MembershipStrategy {
  readonly kind: 'static' | 'elastic';
  /** The most partitions this worker takes (reported with its heartbeat), null: no cap. */
  readonly maxPartitions: number | null;
  /** Its weight (reported with its heartbeat): its share relative to the others'. */
  readonly weight: number;
  /**
   * What this worker should own now, from the topics' partitions and the group's live workers (by
   * the store's clock; undefined when the store keeps no heartbeats).
   */
  target(topics: ReadonlyMap<string, readonly number[]>, live: readonly LiveWorker[] | undefined): TopicPartition[];
}
