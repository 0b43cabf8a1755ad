import type { TopicPartition } from '../reader/types.js';
import type { LiveWorker } from '../store/types.js';
import { ClaimKeeper } from './claims.js';
import { assignPartitions, partitionKey } from './rendezvous.js';
import type { MembershipContext } from './types.js';

/** Options of elastic membership. */
export interface ElasticMembershipOptions {
  /** The most partitions this worker takes; the others respect it in their targets. Default: no cap. */
  maxPartitions?: number;
  /**
   * This worker's share relative to the others' (a positive integer): a worker of weight 3 takes
   * three times the partitions of one of weight 1. Default 1.
   */
  weight?: number;
}

/**
 * Elastic membership: the group's live workers (heartbeats in the store, judged by the store's
 * clock) each compute the same target from one view the heartbeat returns (the sorted live list
 * and who owns which partition now) and the topics' partitions (assignPartitions: each keeps what
 * it owns up to its share, the rest placed by rendezvous hashing), claim what they target once it
 * is free, and hand off what they no longer target. A worker that joins takes its share from the
 * others (no other partition moves); one that stops cleanly unregisters, so the others take its
 * partitions at their next round; one that dies is left out once its heartbeat is older than the
 * session timeout, and its partitions are claimed when their leases expire.
 */
export class ElasticMembership<Tx> extends ClaimKeeper<Tx> {
  constructor(ctx: MembershipContext<Tx>, options: ElasticMembershipOptions = {}) {
    let memo: { key: string; mine: TopicPartition[] } | undefined;
    let warnedShort = '';
    super(
      ctx,
      {
        kind: 'elastic',
        maxPartitions: options.maxPartitions ?? null,
        weight: options.weight ?? 1,
        target(topics, live: readonly LiveWorker[] | undefined) {
          const elastic = (live ?? []).filter((w) => w.membership === 'elastic');
          const workers = elastic.map((w) => ({
            workerId: w.workerId,
            maxPartitions: w.maxPartitions ?? undefined,
            weight: w.weight ?? 1,
          }));
          // The heartbeat's answer always holds this worker; its own cap and weight are known best here.
          if (!workers.some((w) => w.workerId === ctx.workerId)) {
            workers.push({ workerId: ctx.workerId, maxPartitions: options.maxPartitions, weight: options.weight ?? 1 });
          }
          // Who owns what now (live elastic owners, live leases), read with the live list: the
          // target keeps it where balance allows.
          const owners = new Map<string, string>();
          for (const w of elastic) for (const tp of w.owned ?? []) owners.set(partitionKey(tp), w.workerId);
          const partitions: TopicPartition[] = [];
          for (const [topic, ps] of topics) for (const partition of ps) partitions.push({ topic, partition });
          const key = `${workers.map((w) => `${w.workerId}/${w.maxPartitions ?? ''}/${w.weight}`).join('\n')}\n\n${partitions
            .map((tp) => `${tp.topic}:${tp.partition}=${owners.get(partitionKey(tp)) ?? ''}`)
            .join(',')}`;
          if (memo?.key === key) return memo.mine;
          const assignment = assignPartitions(workers, partitions, owners);
          const unassigned = partitions.length - assignment.size;
          const shortKey = `${key.slice(0, key.indexOf('\n\n'))}/${partitions.length}`;
          if (unassigned > 0 && warnedShort !== shortKey) {
            ctx.logger.warn(
              `${unassigned} partition(s) have no target: the live workers' maxPartitions caps add up to less than the ` +
                `${partitions.length} partitions; start more workers or raise maxPartitions`,
            );
            warnedShort = shortKey;
          }
          const mine = partitions.filter((tp) => assignment.get(`${tp.topic}:${tp.partition}`) === ctx.workerId);
          memo = { key, mine };
          return mine;
        },
      },
      // A hand-off takes up to a round plus the holder's in-flight batch: waits shorter than two
      // rounds plus a lease are expected and logged at debug only.
      { force: false, onHeld: 'wait', quietWaitMs: 2 * ctx.heartbeatIntervalMs + ctx.leaseMs + ctx.sessionTimeoutMs },
    );
  }
}
