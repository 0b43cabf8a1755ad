import { AbortedError, FencedError, PartitionHeldError, StoreUnavailableError } from '../errors.js';
import type {
  BatchRange,
  Claim,
  ClaimInput,
  CrashEvidence,
  DeadLetter,
  LiveWorker,
  OffsetRange,
  PartitionKey,
  PartitionState,
  RunBatchOptions,
  TransactionalStore,
  WorkerHeartbeat,
} from '../store/types.js';

/**
 * The transaction of {@link MemoryStore}: reads see committed data plus this transaction's own
 * writes; writes become visible to others only when the batch commits, together with its offset.
 */
export class MemoryTx {
  readonly #base: Map<string, unknown>;
  readonly #writes = new Map<string, unknown>();

  constructor(base: Map<string, unknown>) {
    this.#base = base;
  }

  get<T>(key: string): T | undefined {
    return (this.#writes.has(key) ? this.#writes.get(key) : this.#base.get(key)) as T | undefined;
  }

  set(key: string, value: unknown): void {
    this.#writes.set(key, value);
  }

  /** Read-modify-write of one key (e.g. `tx.update('balance:a', (v = 0) => v + 5)`). */
  update<T>(key: string, fn: (current: T | undefined) => T): void {
    this.set(key, fn(this.get<T>(key)));
  }

  /** @internal */
  writes(): ReadonlyMap<string, unknown> {
    return this.#writes;
  }
}

interface Row extends PartitionState {
  leaseUntil: number;
  leaseMs: number;
  suspect: boolean;
  crash: CrashEvidence | null;
}

/** One committed batch, as the offset log of a real store records it. */
export interface MemoryLogEntry extends PartitionKey {
  from: bigint;
  to: bigint;
  recordCount: number;
  epoch: bigint;
  workerId: string;
}

const keyOf = (k: PartitionKey) => `${k.group}\u0000${k.topic}\u0000${k.partition}`;

/**
 * A real, in-memory implementation of {@link TransactionalStore} with the same guarantees as the
 * Postgres store inside one process: atomic batches, epoch fencing, compare-and-set positions. The
 * runtime's unit tests run against it; every guarantee is proven again against Postgres.
 */
export class MemoryStore implements TransactionalStore<MemoryTx> {
  /** Committed application data (what handlers wrote through their MemoryTx). */
  readonly data = new Map<string, unknown>();
  readonly log: MemoryLogEntry[] = [];
  readonly deadLetters: Array<DeadLetter & PartitionKey> = [];
  readonly #rows = new Map<string, Row>();
  readonly #workers = new Map<string, WorkerHeartbeat & { startedAt: number; heartbeatAt: number }>();
  #closed = false;
  #serial: Promise<void> = Promise.resolve();

  async claim(input: ClaimInput): Promise<Claim> {
    const k = keyOf(input);
    const row = this.#rows.get(k) ?? {
      group: input.group,
      topic: input.topic,
      partition: input.partition,
      nextOffset: input.initialOffset,
      epoch: 0n,
      owner: null,
      leaseExpiresAt: null,
      highestCommitted: null,
      leaseUntil: 0,
      leaseMs: input.leaseMs,
      suspect: false,
      crash: null,
    };
    const now = Date.now();
    const other = row.owner !== null && row.owner !== input.workerId;
    const live = row.leaseUntil > now;
    if (other && live && !input.force) {
      throw new PartitionHeldError(input.topic, input.partition, row.owner, row.leaseUntil - now);
    }
    const takenFrom = other ? { owner: row.owner!, leaseLive: live } : undefined;
    // As in Postgres: a holder that never released (it died) makes the next claim suspect.
    if (!input.reclaim) row.suspect = row.owner !== null || row.crash !== null;
    row.epoch += 1n;
    row.owner = input.workerId;
    row.leaseMs = input.leaseMs;
    row.leaseUntil = now + input.leaseMs;
    row.leaseExpiresAt = new Date(row.leaseUntil);
    this.#rows.set(k, row);
    return {
      group: row.group,
      topic: row.topic,
      partition: row.partition,
      workerId: input.workerId,
      epoch: row.epoch,
      nextOffset: row.nextOffset,
      highestCommitted: row.highestCommitted,
      suspect: row.suspect,
      ...(row.crash ? { crash: { ...row.crash } } : {}),
      ...(takenFrom ? { takenFrom } : {}),
    };
  }

  async heartbeat(worker: WorkerHeartbeat, sessionTimeoutMs: number): Promise<LiveWorker[]> {
    const now = Date.now();
    const k = `${worker.group}\u0000${worker.workerId}`;
    const known = this.#workers.get(k);
    this.#workers.set(k, {
      ...worker,
      startedAt: worker.starting || !known ? now : known.startedAt,
      heartbeatAt: now,
    });
    // The partitions each worker owns with a live lease, at the same instant as the live list.
    const owned = new Map<string, Array<{ topic: string; partition: number }>>();
    for (const row of this.#rows.values()) {
      if (row.group !== worker.group || row.owner === null || row.leaseUntil <= now) continue;
      owned.set(row.owner, [...(owned.get(row.owner) ?? []), { topic: row.topic, partition: row.partition }]);
    }
    const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    return [...this.#workers.values()]
      .filter((w) => w.group === worker.group && now - w.heartbeatAt < sessionTimeoutMs)
      .sort((a, b) => cmp(a.workerId, b.workerId))
      .map((w) => ({
        workerId: w.workerId,
        host: w.host,
        pid: w.pid,
        startedAt: new Date(w.startedAt),
        heartbeatAgeMs: now - w.heartbeatAt,
        membership: w.membership,
        maxPartitions: w.maxPartitions,
        weight: w.weight ?? 1,
        owned: (owned.get(w.workerId) ?? []).sort((a, b) => cmp(a.topic, b.topic) || a.partition - b.partition),
      }));
  }

  async leave(group: string, workerId: string): Promise<void> {
    this.#workers.delete(`${group}\u0000${workerId}`);
  }

  /** Registered workers (live or not), as heartbeats left them. */
  workers(): Array<WorkerHeartbeat & { startedAt: number; heartbeatAt: number }> {
    return [...this.#workers.values()];
  }

  async recordInFlight(claim: Claim, evidence: CrashEvidence | null): Promise<void> {
    const row = this.#rows.get(keyOf(claim));
    if (!row || row.epoch !== claim.epoch || row.owner !== claim.workerId)
      throw new FencedError(claim.topic, claim.partition, claim.epoch);
    row.crash = evidence && { ...evidence };
  }

  async transaction<R>(work: (tx: MemoryTx) => Promise<R>): Promise<R> {
    return this.#serialized(async () => {
      const tx = new MemoryTx(this.data);
      const result = await work(tx);
      for (const [k, v] of tx.writes()) this.data.set(k, v);
      return result;
    });
  }

  /** Transactions run one at a time: serializable isolation, like row locks on the keys they touch. */
  async #serialized<R>(fn: () => Promise<R>): Promise<R> {
    const previous = this.#serial;
    let done!: () => void;
    this.#serial = new Promise<void>((r) => {
      done = r;
    });
    await previous;
    try {
      return await fn();
    } finally {
      done();
    }
  }

  isTransientError(e: unknown): boolean {
    return e instanceof StoreUnavailableError;
  }

  async runBatch<R>(
    claim: Claim,
    range: BatchRange,
    work: (tx: MemoryTx) => Promise<R>,
    options: RunBatchOptions = {},
  ): Promise<R> {
    return this.#serialized(() => this.#runBatch(claim, range, work, options));
  }

  async #runBatch<R>(claim: Claim, range: BatchRange, work: (tx: MemoryTx) => Promise<R>, options: RunBatchOptions): Promise<R> {
    const tx = new MemoryTx(this.data);
    const result = await work(tx);
    if (options.signal?.aborted) throw new AbortedError();
    // Commit point: nothing awaits between the check and the apply, so it is atomic.
    const row = this.#rows.get(keyOf(claim));
    if (!row || row.epoch !== claim.epoch || row.owner !== claim.workerId || row.nextOffset !== range.fetchedFrom) {
      throw new FencedError(claim.topic, claim.partition, claim.epoch);
    }
    for (const [k, v] of tx.writes()) this.data.set(k, v);
    row.nextOffset = range.nextOffset;
    // A commit extends the lease, as in Postgres.
    row.leaseUntil = Date.now() + row.leaseMs;
    row.leaseExpiresAt = new Date(row.leaseUntil);
    row.suspect = false;
    row.crash = null;
    row.highestCommitted =
      row.highestCommitted === null || range.nextOffset > row.highestCommitted ? range.nextOffset : row.highestCommitted;
    this.log.push({
      ...keyOnly(claim),
      from: range.fetchedFrom,
      to: range.nextOffset,
      recordCount: range.recordCount,
      epoch: claim.epoch,
      workerId: claim.workerId,
    });
    for (const d of options.deadLetters ?? []) this.deadLetters.push({ ...keyOnly(claim), ...d });
    return result;
  }

  /** From the commit log: batches committed with records, merged (this store keeps no requeues). */
  async appliedRanges(key: PartitionKey, from: bigint, to: bigint): Promise<OffsetRange[]> {
    const k = keyOf(key);
    const pieces = this.log
      .filter((e) => e.recordCount > 0 && e.to > from && e.from < to && keyOf(e) === k)
      .map((e) => ({ from: e.from > from ? e.from : from, to: e.to < to ? e.to : to }))
      .sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
    const merged: OffsetRange[] = [];
    for (const p of pieces) {
      const last = merged[merged.length - 1];
      if (last && p.from <= last.to) {
        if (p.to > last.to) last.to = p.to;
      } else merged.push({ ...p });
    }
    return merged;
  }

  async renew(claims: readonly Claim[], leaseMs: number): Promise<Claim[]> {
    const lost: Claim[] = [];
    for (const c of claims) {
      const row = this.#rows.get(keyOf(c));
      if (!row || row.epoch !== c.epoch || row.owner !== c.workerId) lost.push(c);
      else {
        row.leaseMs = leaseMs;
        row.leaseUntil = Date.now() + leaseMs;
        row.leaseExpiresAt = new Date(row.leaseUntil);
      }
    }
    return lost;
  }

  async release(claim: Claim): Promise<boolean> {
    const row = this.#rows.get(keyOf(claim));
    if (!row || row.epoch !== claim.epoch || row.owner !== claim.workerId) return false;
    row.owner = null;
    row.leaseUntil = 0;
    row.leaseExpiresAt = null;
    return true;
  }

  async position(key: PartitionKey): Promise<PartitionState | null> {
    const row = this.#rows.get(keyOf(key));
    if (!row) return null;
    const { leaseUntil: _l, leaseMs: _m, suspect: _s, crash: _c, ...state } = row;
    return { ...state };
  }

  /** Moves a partition as an operator's rewind does: new position, epoch bumped, owner kept. */
  async rewind(key: PartitionKey, nextOffset: bigint): Promise<void> {
    const row = this.#rows.get(keyOf(key));
    if (!row) throw new Error(`no partition ${keyOf(key)}`);
    row.nextOffset = nextOffset;
    row.epoch += 1n;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  get closed(): boolean {
    return this.#closed;
  }
}

function keyOnly(k: PartitionKey): PartitionKey {
  return { group: k.group, topic: k.topic, partition: k.partition };
}
