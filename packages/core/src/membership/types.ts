import type { Logger } from '../logger.js';
import type { OffsetSpec, PartitionReader } from '../reader/types.js';
import type { Claim, TransactionalStore } from '../store/types.js';

/**
 * Decides which partitions a worker owns and keeps them: `static` is told its partitions; an
 * elastic membership (live workers agreeing on an assignment in the store) is a second
 * implementation of this interface.
 */
export interface Membership {
  /** Takes the partitions this worker owns now, one claim each. */
  claim(): Promise<Claim[]>;
  /**
   * Keeps the claims that `held()` returns (lease renewal) until `signal` aborts; `lost(claim)` is
   * called for each claim found lost (another worker claimed it, or an operator rewound it).
   */
  keep(held: () => readonly Claim[], lost: (claim: Claim) => void, signal: AbortSignal): void;
  /**
   * Waits for {@link keep} to end (its signal aborted) and gives `claims` up, each even if another
   * fails (then rejects with the first failure); `released(claim)` is called for each released.
   */
  release(claims: readonly Claim[], released: (claim: Claim) => void): Promise<void>;
}

/** What a membership works with: the group, its topics, the reader, the store and the worker's identity. */
export interface MembershipContext<Tx> {
  group: string;
  topics: readonly string[];
  reader: PartitionReader;
  store: TransactionalStore<Tx>;
  workerId: string;
  leaseMs: number;
  /** Where a partition never seen by this group starts. */
  initialOffset: OffsetSpec;
  logger: Logger;
}
