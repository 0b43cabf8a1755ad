import { toError } from '../errors.js';
import type { TopicPartition } from '../reader/types.js';
import type { Claim } from '../store/types.js';
import { sleep } from '../time.js';
import type { MembershipContext } from './types.js';

/** Claims each partition, resolving the initial offset once per topic (used only for partitions never seen). */
export async function claimAll<Tx>(ctx: MembershipContext<Tx>, assignment: readonly TopicPartition[]): Promise<Claim[]> {
  const { reader, store, workerId, leaseMs, initialOffset } = ctx;
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of assignment) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
  const claims: Claim[] = [];
  for (const [topic, partitions] of byTopic) {
    const initial = await reader.resolveOffsets(topic, partitions, initialOffset);
    for (const partition of partitions) {
      claims.push(
        await store.claim({
          group: ctx.group,
          topic,
          partition,
          workerId,
          leaseMs,
          initialOffset: initial.get(partition) ?? 0n,
        }),
      );
    }
  }
  return claims;
}

/** Renews the leases of `held()` every leaseMs/6 (at least 500 ms) until `signal` aborts. */
export async function renewForever<Tx>(
  ctx: MembershipContext<Tx>,
  held: () => readonly Claim[],
  lost: (claim: Claim) => void,
  signal: AbortSignal,
): Promise<void> {
  const { store, leaseMs, logger } = ctx;
  const every = Math.max(500, Math.floor(leaseMs / 6));
  while (!signal.aborted) {
    await sleep(every, signal);
    if (signal.aborted) break;
    try {
      for (const c of await store.renew(held(), leaseMs)) lost(c);
    } catch (e) {
      logger.warn('lease renewal failed; will retry', { error: toError(e).message });
    }
  }
}

/** Releases every claim, each even if another fails; rejects with the first failure. */
export async function releaseAll<Tx>(
  ctx: MembershipContext<Tx>,
  claims: readonly Claim[],
  released: (claim: Claim) => void,
): Promise<void> {
  const results = await Promise.allSettled(
    claims.map(async (claim) => {
      await ctx.store.release(claim);
      released(claim);
    }),
  );
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}
