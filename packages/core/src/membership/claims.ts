import { hostname } from 'node:os';
import { ConfigError, markLogged, OncelyError, PartitionHeldError, toError } from '../errors.js';
import type { TopicPartition } from '../reader/types.js';
import type { Claim, LiveWorker, TransactionalStore } from '../store/types.js';
import { backoff, sleep } from '../time.js';
import { partitionKey } from './rendezvous.js';
import type { Membership, MembershipContext, MembershipHost, MembershipStrategy, MembershipView } from './types.js';

/** While membership rounds keep failing, the log says so again this often. */
const STILL_FAILING_LOG_MS = 60_000;

/**
 * Whether the store says a driver error (the error or one of its causes) is one no retry fixes: a
 * SQLSTATE such as 42501. An error the store does not recognise (a Kafka listing, a bug) is not.
 */
function storeSaysSystemic(e: unknown, store: Pick<TransactionalStore<unknown>, 'classifyError' | 'isTransientError'>): boolean {
  let current = e;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const cls = store.classifyError?.(current) ?? (store.isTransientError?.(current) ? 'transient' : undefined);
    if (cls) return cls === 'systemic';
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The app's topics and their partitions, listed again every partitionRefreshMs so that partitions
 * added to a topic are picked up without a restart. The first listing must succeed (an unknown
 * topic fails the start); later failures keep the last list, except a topic that no longer exists:
 * its partitions leave the target, so their runners stop and their claims are released.
 */
export class PartitionCatalog {
  readonly #byTopic = new Map<string, readonly number[]>();
  #listedAt = Number.NEGATIVE_INFINITY;
  #failing = false;

  constructor(private readonly ctx: MembershipContext<unknown>) {}

  async get(): Promise<ReadonlyMap<string, readonly number[]>> {
    const { reader, topics, logger, partitionRefreshMs } = this.ctx;
    const first = this.#listedAt === Number.NEGATIVE_INFINITY;
    if (!first && performance.now() - this.#listedAt < partitionRefreshMs) return this.#byTopic;
    const listed = new Map<string, readonly number[]>();
    try {
      for (const topic of topics) {
        try {
          listed.set(
            topic,
            [...(await reader.partitions(topic))].sort((a, b) => a - b),
          );
        } catch (e) {
          if (first || !OncelyError.is(e, 'TOPIC_NOT_FOUND')) throw e;
          if ((this.#byTopic.get(topic)?.length ?? 0) > 0) {
            logger.error(`topic ${topic} no longer exists: its partitions are stopped and released`, {
              topic,
              error: toError(e).message,
            });
          }
          listed.set(topic, []);
        }
      }
    } catch (e) {
      if (first) throw e;
      if (!this.#failing)
        logger.warn('could not list the topics’ partitions; keeping the last list', { error: toError(e).message });
      this.#failing = true;
      return this.#byTopic;
    }
    this.#failing = false;
    for (const [topic, partitions] of listed) {
      const before = this.#byTopic.get(topic);
      if (before && partitions.length > before.length) {
        logger.info(
          `topic ${topic} has ${partitions.length} partitions now (was ${before.length}); taking the new ones into account`,
          {
            topic,
          },
        );
      }
      this.#byTopic.set(topic, partitions);
    }
    this.#listedAt = performance.now();
    return this.#byTopic;
  }
}

interface Pending {
  tp: TopicPartition;
  /** When this worker began to want it (performance.now()). */
  since: number;
  attempt: number;
  nextTryAt: number;
  /** The holder (and loudness) last logged, so a wait is logged once per holder. */
  logged: string | undefined;
  owner: string | null;
}

/** How a membership that waits for a held partition behaves. */
export interface KeeperOptions {
  /** Take the first round's partitions even from live holders (static `force`). */
  force: boolean;
  /** What a held partition does to the first round (static `onHeld`). */
  onHeld: 'wait' | 'fail';
  /**
   * Waits shorter than this are expected (an elastic hand-off in progress) and logged at debug;
   * longer ones, and every static wait, are logged at warn, once per holder.
   */
  quietWaitMs: number;
}

/**
 * How long after its last heartbeat a worker whose PostgreSQL sessions have ended counts as dead
 * (a store that can see sessions: ClaimInput.goneGraceMs): two rounds. A process killed by SIGKILL
 * or the OOM killer loses its sessions at once, so its partitions move within a few seconds
 * instead of after the lease and session timeout (15 s by default). A live worker whose heartbeat
 * connection was reset heartbeats again from another one within a round, which makes it live
 * whatever happened to the old session; the grace leaves it a round more. Taking a partition from
 * a worker that was in fact alive costs no correctness: its next commit is fenced by the new epoch.
 */
export function goneGraceMs(ctx: Pick<MembershipContext<unknown>, 'heartbeatIntervalMs' | 'sessionTimeoutMs'>): number {
  return Math.min(2 * ctx.heartbeatIntervalMs, ctx.sessionTimeoutMs);
}

/**
 * What a store's release resolved: false only when it released nothing. A store written before
 * release() said so resolves undefined, which counts as released, as it did then.
 */
function isReleased(result: boolean | undefined): boolean {
  return result !== false;
}

/** Parallel claims in a round: enough for a fast start with many partitions, few pool connections. */
const CLAIM_CONCURRENCY = 4;

/**
 * What every membership does with claims, whatever decides its target: each round (every
 * heartbeatIntervalMs) it heartbeats when the store keeps heartbeats, renews every held lease in
 * one statement, computes the target (the strategy), hands off what is held but no longer
 * targeted (after the runner's in-flight batch; then released, so the next owner need not wait
 * for the lease), and claims what is targeted but not held. A claim takes only a free, released
 * or expired partition; a held one is retried with back-off until it is free, so a partition lost
 * to another worker is taken back when that worker stops or dies. Between rounds, due retries run
 * on their own, so a hand-off is picked up within a fraction of a round.
 */
export class ClaimKeeper<Tx> implements Membership {
  readonly kind: 'static' | 'elastic';
  readonly #ctx: MembershipContext<Tx>;
  readonly #strategy: MembershipStrategy;
  readonly #options: KeeperOptions;
  readonly #catalog: PartitionCatalog;
  readonly #host = hostname();
  readonly #stop = new AbortController();
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #draining = false;
  /** The first round succeeded (a start() that failed on an outage may be called again). */
  #started = false;
  /** A heartbeat was sent (it may have registered this worker even if its answer was lost). */
  #registered = false;
  #nextRoundAt = 0;
  #target = new Map<string, TopicPartition>();
  readonly #pending = new Map<string, Pending>();
  readonly #handingOff = new Map<string, Promise<void>>();
  /** Partitions known to have a row: their claims need no initial offset from Kafka. */
  readonly #known = new Set<string>();
  #live: LiveWorker[] | undefined;
  #lastBeat: number | undefined;
  #roundFailing: string | undefined;
  /** Since when the rounds fail, and when the log last said so (performance.now()). */
  #roundFailingSince = 0;
  #roundLoggedAt = 0;

  constructor(ctx: MembershipContext<Tx>, strategy: MembershipStrategy, options: KeeperOptions) {
    this.#ctx = ctx;
    this.#strategy = strategy;
    this.#options = options;
    this.kind = strategy.kind;
    this.#catalog = new PartitionCatalog(ctx as MembershipContext<unknown>);
  }

  async start(host: MembershipHost): Promise<void> {
    if (this.#loop) return;
    await this.#round(host, !this.#started);
    this.#started = true;
    if (!this.#loop && !this.#stop.signal.aborted) this.#loop = this.#run(host);
  }

  async drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#pending.clear();
    const { store, group, workerId, logger } = this.#ctx;
    // A start-up that failed before the first heartbeat (no database, a missing topic) left no row
    // to delete: a leave would only fail again on the same cause and log it a second time.
    if (!this.#registered) return;
    try {
      await store.leave?.(group, workerId);
    } catch (e) {
      logger.warn('could not unregister this worker; the others see it dead after the session timeout', {
        error: toError(e).message,
      });
    }
  }

  /** Wakes the loop for a claim pass (a runner dropped its partition: take it back when free). */
  reevaluate(): void {
    if (this.#draining) return;
    for (const p of this.#pending.values()) p.nextTryAt = 0;
    this.#wake?.();
  }

  async release(claims: readonly Claim[], released: (claim: Claim, released: boolean) => void): Promise<void> {
    this.#draining = true;
    this.#stop.abort();
    this.#wake?.();
    await this.#loop;
    await Promise.allSettled([...this.#handingOff.values()]);
    const results = await Promise.allSettled(
      claims.map(async (claim) => {
        released(claim, isReleased(await this.#ctx.store.release(claim)));
      }),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  view(): MembershipView {
    return {
      kind: this.kind,
      target: [...this.#target.keys()].sort(cmp),
      waiting: [...this.#pending.entries()]
        .filter(([, p]) => p.attempt > 0)
        .map(([partition, p]) => ({ partition, owner: p.owner }))
        .sort((a, b) => cmp(a.partition, b.partition)),
      ...(this.#live ? { liveWorkers: this.#live.map((w) => w.workerId) } : {}),
    };
  }

  async #run(host: MembershipHost): Promise<void> {
    const { logger, heartbeatIntervalMs } = this.#ctx;
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const now = performance.now();
      let until = this.#nextRoundAt;
      if (!this.#draining) for (const p of this.#pending.values()) until = Math.min(until, p.nextTryAt);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        void sleep(Math.max(0, until - now), signal).then(resolve);
      });
      this.#wake = undefined;
      if (signal.aborted) break;
      try {
        const full = performance.now() >= this.#nextRoundAt;
        if (full) await this.#round(host, false);
        else if (!this.#draining) await this.#claimDue(host, false);
        // Only a whole round (renewal included) shows the store answers again: a claim attempt with
        // nothing due touches nothing, and logging recovery for it made one pair of lines per round.
        if (full && this.#roundFailing) {
          logger.info('membership: the store answers again', { after: this.#roundFailing });
          this.#roundFailing = undefined;
        }
      } catch (e) {
        const error = toError(e);
        // A privilege taken away or one of oncely's tables gone: no round will renew the leases
        // again, so the worker would keep fetching while its partitions expire and go to others.
        if (host.fail && storeSaysSystemic(e, this.#ctx.store)) {
          const remedy = this.#ctx.store.remedy?.(e) ?? 'fix the cause the error names';
          const failure = new OncelyError(
            'STORE_FAILED',
            `The membership round (lease renewal, heartbeat, claims) failed with an error no retry fixes: ${error.message}. ` +
              `To do: ${remedy} This worker's leases are not renewed without it, so it stops; once fixed, start it again ` +
              'and it goes on from the stored positions.',
            { cause: e },
          );
          // Said here in full, with what to do; the worker's failure line refers to it.
          logger.error('membership round failed: an error no retry fixes; the worker stops', { error: failure.message });
          host.fail(markLogged(failure));
          return;
        }
        // One line per kind of failure, not one per round, and once a minute while it lasts.
        const state = OncelyError.is(error) ? error.code : error.name;
        const at = performance.now();
        if (this.#roundFailing !== state) {
          if (this.#roundFailing === undefined) this.#roundFailingSince = at;
          this.#roundLoggedAt = at;
          logger.warn('membership round failed; leases are renewed again next round', {
            error: error.message,
            retryInMs: heartbeatIntervalMs,
          });
        } else if (at - this.#roundLoggedAt >= STILL_FAILING_LOG_MS) {
          this.#roundLoggedAt = at;
          logger.error('membership round still failing; leases are renewed again next round', {
            failingForMs: Math.round(at - this.#roundFailingSince),
            error: error.message,
            retryInMs: heartbeatIntervalMs,
          });
        }
        this.#roundFailing = state;
        this.#nextRoundAt = Math.min(this.#nextRoundAt, performance.now() + heartbeatIntervalMs);
      }
    }
  }

  async #round(host: MembershipHost, first: boolean): Promise<void> {
    const { heartbeatIntervalMs } = this.#ctx;
    this.#nextRoundAt = performance.now() + heartbeatIntervalMs;
    // Renewal first: it is what keeps the partitions, whatever else fails this round.
    await this.#renew(host);
    if (this.#draining) return;
    const live = await this.#heartbeat(host, first);
    const topics = await this.#catalog.get();
    const target = this.#strategy.target(topics, live);
    this.#setTarget(host, target);
    await this.#claimDue(host, first);
  }

  async #renew(host: MembershipHost): Promise<void> {
    const held = host.held();
    if (held.length === 0) return;
    const lost = await this.#ctx.store.renew(held, this.#ctx.leaseMs);
    for (const claim of lost) {
      this.#ctx.logger.warn('lease lost: another worker holds the partition now, or it was rewound; its runner re-checks', {
        topic: claim.topic,
        partition: claim.partition,
        epoch: claim.epoch,
      });
      host.lost(claim);
    }
  }

  async #heartbeat(host: MembershipHost, first: boolean): Promise<LiveWorker[] | undefined> {
    const { store, group, workerId, sessionTimeoutMs, logger } = this.#ctx;
    if (!store.heartbeat) return undefined;
    const now = performance.now();
    if (this.#lastBeat !== undefined && now - this.#lastBeat > sessionTimeoutMs) {
      logger.warn(
        `no heartbeat for ${((now - this.#lastBeat) / 1000).toFixed(1)} s, longer than the session timeout: the other workers may ` +
          'have taken this worker’s partitions over (its late commits are fenced)',
        { sessionTimeoutMs },
      );
    }
    const registered = this.#registered;
    this.#registered = true;
    const live = await store
      .heartbeat(
        {
          group,
          workerId,
          host: this.#host,
          pid: process.pid,
          starting: first,
          membership: this.kind,
          target: this.#started ? this.#target.size : null,
          held: host.held().length,
          maxPartitions: this.#strategy.maxPartitions,
          weight: this.#strategy.weight,
        },
        sessionTimeoutMs,
        { goneGraceMs: goneGraceMs(this.#ctx) },
      )
      .catch((e: unknown) => {
        // A statement the database refused (a schema not migrated) wrote no row; a lost connection may have.
        if (OncelyError.is(e) && !e.retriable) this.#registered = registered;
        throw e;
      });
    this.#lastBeat = performance.now();
    const sorted = [...live].sort((a, b) => cmp(a.workerId, b.workerId));
    const before = this.#live?.filter((w) => w.membership === 'elastic').map((w) => w.workerId);
    const after = sorted.filter((w) => w.membership === 'elastic').map((w) => w.workerId);
    if (this.kind === 'elastic' && before && before.join('\n') !== after.join('\n')) {
      const joined = after.filter((w) => !before.includes(w));
      const left = before.filter((w) => !after.includes(w));
      logger.info(`group ${group}: ${after.length} live worker(s)`, {
        ...(joined.length ? { joined: joined.join(',') } : {}),
        ...(left.length ? { left: left.join(',') } : {}),
      });
    }
    this.#live = sorted;
    return sorted;
  }

  #setTarget(host: MembershipHost, target: readonly TopicPartition[]): void {
    const next = new Map(target.map((tp) => [partitionKey(tp), tp] as const));
    this.#target = next;
    const held = new Map(host.held().map((c) => [partitionKey(c), c] as const));
    for (const key of [...this.#pending.keys()]) if (!next.has(key) || held.has(key)) this.#pending.delete(key);
    const now = performance.now();
    for (const [key, tp] of next) {
      if (held.has(key) || this.#handingOff.has(key) || this.#pending.has(key)) continue;
      this.#pending.set(key, { tp, since: now, attempt: 0, nextTryAt: 0, logged: undefined, owner: null });
    }
    for (const [key, claim] of held) {
      if (!next.has(key) && !this.#handingOff.has(key)) this.#handOff(host, key, claim);
    }
  }

  #handOff(host: MembershipHost, key: string, claim: Claim): void {
    const { logger, store } = this.#ctx;
    logger.info('handing the partition off: no longer in this worker’s target', {
      topic: claim.topic,
      partition: claim.partition,
    });
    const done = (async () => {
      const final = await host.handOff(claim);
      if (!final) return;
      try {
        host.released(final, 'handoff', isReleased(await store.release(final)));
      } catch (e) {
        logger.warn('could not release a handed-off partition; its next owner waits for the lease to expire', {
          topic: claim.topic,
          partition: claim.partition,
          error: toError(e).message,
        });
      }
    })()
      .catch((e: unknown) =>
        logger.warn('hand-off failed', { topic: claim.topic, partition: claim.partition, error: toError(e).message }),
      )
      .finally(() => {
        this.#handingOff.delete(key);
        // Targeted again meanwhile (a worker came and went): claim it back.
        const tp = this.#target.get(key);
        if (tp && !this.#draining && !this.#pending.has(key)) {
          this.#pending.set(key, { tp, since: performance.now(), attempt: 0, nextTryAt: 0, logged: undefined, owner: null });
          this.#wake?.();
        }
      });
    this.#handingOff.set(key, done);
  }

  async #claimDue(host: MembershipHost, first: boolean): Promise<void> {
    const now = performance.now();
    const held = new Set(host.held().map(partitionKey));
    const due = [...this.#pending.entries()].filter(
      ([key, p]) => p.nextTryAt <= now && !held.has(key) && !this.#handingOff.has(key),
    );
    if (due.length === 0) return;
    const initial = await this.#initialOffsets(due.map(([key, p]) => [key, p.tp] as const));
    const refused: string[] = [];
    let next = 0;
    const work = async () => {
      while (next < due.length) {
        const [key, p] = due[next++]!;
        const outcome = await this.#claimOne(host, key, p, initial.get(key) ?? 0n, first);
        if (outcome) refused.push(outcome);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CLAIM_CONCURRENCY, due.length) }, work));
    if (refused.length > 0) {
      throw new ConfigError(
        `${refused.join('; ')}. This worker's static assignment overlaps a live worker's: stop that worker or fix the ` +
          '--partitions/--worker lists, wait for its lease to end (onHeld: wait, --on-held wait), or take the partitions ' +
          'over deliberately with --force (force: true).',
      );
    }
  }

  /** Claims one partition; returns a refusal text when the first round must fail (onHeld: 'fail'). */
  async #claimOne(
    host: MembershipHost,
    key: string,
    p: Pending,
    initialOffset: bigint,
    first: boolean,
  ): Promise<string | undefined> {
    const { store, group, workerId, leaseMs, logger, heartbeatIntervalMs } = this.#ctx;
    const force = first && this.#options.force;
    let claim: Claim;
    try {
      claim = await store.claim({
        group,
        topic: p.tp.topic,
        partition: p.tp.partition,
        workerId,
        initialOffset,
        leaseMs,
        force,
        goneGraceMs: goneGraceMs(this.#ctx),
      });
    } catch (e) {
      if (!(e instanceof PartitionHeldError) && !OncelyError.is(e, 'PARTITION_HELD')) throw e;
      const held = e as PartitionHeldError;
      this.#known.add(key);
      p.attempt++;
      p.owner = held.owner;
      // Quick retries while a hand-off is likely under way, then once a round.
      p.nextTryAt = performance.now() + backoff(p.attempt, 250, heartbeatIntervalMs);
      if (first && this.#options.onHeld === 'fail') return held.message.replace(/; a claim takes.*$/, '');
      const waited = performance.now() - p.since;
      const loud = this.kind === 'static' || waited > this.#options.quietWaitMs;
      // Once per holder, and once more when an expected wait (a hand-off) turns into a long one.
      const state = `${held.owner}|${loud}`;
      if (p.logged !== state) {
        (loud ? logger.warn : logger.debug)(
          'partition held by another live worker; waiting for it to be released or its lease to expire',
          {
            topic: p.tp.topic,
            partition: p.tp.partition,
            owner: held.owner,
            leaseLeftMs: held.leaseLeftMs,
            waitedMs: Math.round(waited),
          },
        );
        p.logged = state;
      }
      return undefined;
    }
    this.#known.add(key);
    this.#pending.delete(key);
    if (claim.takenFrom?.gone) {
      logger.info('took the partition over from a worker whose process is gone (its sessions ended; its lease had not run out)', {
        topic: claim.topic,
        partition: claim.partition,
        from: claim.takenFrom.owner,
        epoch: claim.epoch,
      });
    } else if (claim.takenFrom?.leaseLive) {
      logger.warn('took the partition over from a live worker by force (recorded in admin_audit); it is fenced', {
        topic: claim.topic,
        partition: claim.partition,
        from: claim.takenFrom.owner,
        epoch: claim.epoch,
      });
    } else if (claim.takenFrom) {
      logger.info('took the partition over from a worker whose lease had expired', {
        topic: claim.topic,
        partition: claim.partition,
        from: claim.takenFrom.owner,
        epoch: claim.epoch,
      });
    }
    if (p.logged !== undefined) {
      logger.info('claimed the partition it waited for', {
        topic: claim.topic,
        partition: claim.partition,
        waitedMs: Math.round(performance.now() - p.since),
      });
    }
    if (this.#draining || this.#stop.signal.aborted || !this.#target.has(key)) {
      // Stopped or re-targeted while the claim ran: give it straight back.
      await store.release(claim).catch(() => {});
      return undefined;
    }
    await host.gained(claim);
    return undefined;
  }

  /** Initial offsets from Kafka, only for partitions whose row may not exist yet (rows are never deleted). */
  async #initialOffsets(due: ReadonlyArray<readonly [string, TopicPartition]>): Promise<Map<string, bigint>> {
    const byTopic = new Map<string, number[]>();
    for (const [key, tp] of due) {
      if (this.#known.has(key)) continue;
      byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition]);
    }
    const out = new Map<string, bigint>();
    for (const [topic, partitions] of byTopic) {
      const resolved = await this.#ctx.reader.resolveOffsets(topic, partitions, this.#ctx.initialOffset);
      for (const [partition, offset] of resolved) out.set(`${topic}:${partition}`, offset);
    }
    return out;
  }
}
