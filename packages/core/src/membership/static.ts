import { ConfigError } from '../errors.js';
import type { TopicPartition } from '../reader/types.js';
import { ClaimKeeper } from './claims.js';
import type { MembershipContext } from './types.js';

/** Parsed `topic:0-3,5` / `topic:*` selector: null partitions means all of the topic's. */
export type PartitionSelection = Map<string, Set<number> | null>;

/**
 * Parses a static assignment like `payments:0-3,orders:*,audit` (a bare topic means all its
 * partitions). Several entries for one topic are merged.
 */
export function parsePartitionSelector(spec: string): PartitionSelection {
  const out: PartitionSelection = new Map();
  const fail = (why: string) => {
    throw new ConfigError(
      `Bad partition selector ${JSON.stringify(spec)}: ${why}. Expected e.g. "payments:0-3,orders:*" or "payments:0,2,4".`,
    );
  };
  let lastTopic: string | undefined;
  for (const raw of spec.split(',').map((s) => s.trim())) {
    if (!raw) fail('empty entry');
    let topic: string;
    let part: string | undefined;
    const colon = raw.lastIndexOf(':');
    if (colon >= 0) {
      topic = raw.slice(0, colon);
      part = raw.slice(colon + 1);
    } else if (/^\d+(-\d+)?$/.test(raw) && lastTopic !== undefined) {
      // "payments:0,2,4": a bare number continues the previous topic.
      topic = lastTopic;
      part = raw;
    } else {
      topic = raw;
    }
    if (!/^[A-Za-z0-9._-]+$/.test(topic)) fail(`"${topic}" is not a topic name`);
    lastTopic = topic;
    if (part === undefined || part === '*') {
      out.set(topic, null);
      continue;
    }
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) fail(`"${part}" is not a partition, a range like 0-3, or *`);
    const from = Number(m![1]);
    const to = m![2] === undefined ? from : Number(m![2]);
    if (to < from) fail(`range ${part} is reversed`);
    const existing = out.get(topic);
    if (existing === null) continue;
    const set = existing ?? new Set<number>();
    for (let p = from; p <= to; p++) set.add(p);
    out.set(topic, set);
  }
  return out;
}

/** Parses `--worker 2/4` (1-based index of count) into a zero-based index. */
export function parseWorkerSplit(spec: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new ConfigError(
      `Bad worker split ${JSON.stringify(spec)}: expected i/n with 1 <= i <= n, e.g. "2/4" for the second of four workers.`,
    );
  }
  return { index: index - 1, count };
}

/**
 * Static membership: the partitions this worker owns, from the topics' partitions and either a
 * selector or a deterministic split. The split deals the sorted (topic, partition) list round-robin,
 * so n workers started with 1/n..n/n cover every partition exactly once.
 */
export function staticAssignment(
  topicPartitions: ReadonlyMap<string, readonly number[]>,
  options: { selection?: PartitionSelection; split?: { index: number; count: number } },
): TopicPartition[] {
  const all: TopicPartition[] = [];
  for (const [topic, partitions] of [...topicPartitions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (const partition of [...partitions].sort((a, b) => a - b)) all.push({ topic, partition });
  }
  let chosen = all;
  if (options.selection) {
    for (const [topic, parts] of options.selection) {
      const known = topicPartitions.get(topic);
      if (!known) throw new ConfigError(`Partition selector names topic "${topic}", which has no handler in this app`);
      for (const p of parts ?? []) {
        if (!known.includes(p))
          throw new ConfigError(`Partition selector names ${topic}:${p}, but ${topic} has partitions ${known.join(',')}`);
      }
    }
    chosen = all.filter(({ topic, partition }) => {
      if (!options.selection!.has(topic)) return false;
      const parts = options.selection!.get(topic);
      return parts === null || parts!.has(partition);
    });
  }
  if (options.split) {
    const { index, count } = options.split;
    chosen = chosen.filter((_, i) => i % count === index);
  }
  return chosen;
}

/** Options of static membership. */
export interface StaticMembershipOptions {
  selection?: PartitionSelection;
  split?: { index: number; count: number };
  /** Take the listed partitions at start even from live holders (`--force`): logged and audited. */
  force?: boolean;
  /** A listed partition held by a live worker at start: wait for it (default), or fail the start. */
  onHeld?: 'wait' | 'fail';
}

/**
 * Static membership: the worker owns the partitions its selector or split names. A partition
 * another live worker holds is waited for (its release or the end of its lease), or fails the
 * start (`onHeld: 'fail'`), or is taken over deliberately (`force`); one lost later (a forced
 * takeover by another worker) is taken back once free. The split and `*` follow the topics'
 * partitions as they are listed again, so new partitions are picked up without a restart.
 */
export class StaticMembership<Tx> extends ClaimKeeper<Tx> {
  constructor(ctx: MembershipContext<Tx>, options: StaticMembershipOptions) {
    let warnedIdle = false;
    super(
      ctx,
      {
        kind: 'static',
        maxPartitions: null,
        weight: 1,
        target(topics) {
          const assignment = staticAssignment(topics, options);
          if (assignment.length === 0 && !warnedIdle) {
            ctx.logger.warn('this worker was assigned no partitions; it will idle', { topics: ctx.topics });
            warnedIdle = true;
          }
          return assignment;
        },
      },
      { force: options.force ?? false, onHeld: options.onHeld ?? 'wait', quietWaitMs: 0 },
    );
  }
}
