/**
 * Reset planning without I/O: a target, the partitions' stored positions, the log bounds Kafka
 * reported and the positions a target reads from the database (a checkpoint, a point in time,
 * another group) in, a plan out. OffsetsAdmin gathers the inputs, inside the reset's transaction
 * when it executes.
 */
import { ConfigError, type PartitionState } from '@oncely/core';
import type { ResetPlan, ResetPlanEntry, ResetRequest, ResetTarget, TopicScope } from './types.js';

/** A partition of one topic, as a map key. */
export const tp = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export function nonEmpty(what: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0)
    throw new ConfigError(`${what} must be a non-empty string; got ${JSON.stringify(v)}.`);
  return v;
}

/** How a target reads in `kafka-consumer-groups` terms. */
export function describeTarget(t: ResetTarget): string {
  switch (t.kind) {
    case 'offset':
      return `--to-offset ${t.offset}`;
    case 'earliest':
      return '--to-earliest';
    case 'latest':
      return '--to-latest';
    case 'datetime':
      return `--to-datetime ${t.at.toISOString()}`;
    case 'duration':
      return `--by-duration ${t.ms} ms`;
    case 'shift':
      return `--shift-by ${t.by}`;
    case 'checkpoint':
      return `--to-checkpoint ${t.name}${t.group ? ` (group ${t.group})` : ''}`;
    case 'time-of-commit':
      return `--to-time-of-commit ${t.at.toISOString()}`;
    case 'group':
      return `positions of group ${t.group}`;
  }
}

export function checkTarget(t: ResetTarget): void {
  if (!t || typeof t !== 'object') throw new ConfigError('A reset needs a target (to: { kind: … }).');
  switch (t.kind) {
    case 'offset':
      if (typeof t.offset !== 'bigint' || t.offset < 0n)
        throw new ConfigError(`--to-offset must be a non-negative integer; got ${String(t.offset)}.`);
      return;
    case 'shift':
      if (typeof t.by !== 'bigint') throw new ConfigError(`--shift-by must be an integer; got ${String(t.by)}.`);
      return;
    case 'datetime':
    case 'time-of-commit':
      if (!(t.at instanceof Date) || Number.isNaN(t.at.getTime()))
        throw new ConfigError(`--${t.kind === 'datetime' ? 'to-datetime' : 'to-time-of-commit'} needs a valid ISO date-time.`);
      return;
    case 'duration':
      if (!Number.isFinite(t.ms) || t.ms < 0)
        throw new ConfigError(`--by-duration must be a non-negative duration; got ${t.ms} ms.`);
      return;
    case 'checkpoint':
      nonEmpty('checkpoint name', t.name);
      return;
    case 'group':
      nonEmpty('source group', t.group);
      return;
    case 'earliest':
    case 'latest':
      return;
    default:
      throw new ConfigError(`Unknown reset target ${JSON.stringify(t)}.`);
  }
}

/** What a plan needs of a partition's stored row. */
export type StoredPosition = Pick<PartitionState, 'topic' | 'partition' | 'nextOffset' | 'epoch' | 'owner'>;

export interface KafkaBounds {
  logStart: Map<string, bigint>;
  highWatermark: Map<string, bigint>;
  /** Offsets for a datetime/duration target. */
  byTime?: Map<string, bigint>;
}

/**
 * The plan of `request` over `scope`: per partition the current and requested positions, the
 * position after clamping to [logStart, highWatermark], and how many records are reprocessed or
 * skipped. `fromDb` holds the positions of a checkpoint, time-of-commit or group target.
 */
export function planReset(
  request: ResetRequest,
  scope: TopicScope[],
  bounds: KafkaBounds,
  stored: ReadonlyMap<string, StoredPosition>,
  fromDb: ReadonlyMap<string, bigint> | undefined,
): ResetPlan {
  const to = request.to;
  const entries: ResetPlanEntry[] = [];
  for (const s of scope) {
    for (const partition of s.partitions!) {
      const k = tp(s.topic, partition);
      const row = stored.get(k);
      const current = row?.nextOffset ?? null;
      const logStart = bounds.logStart.get(k) ?? 0n;
      const highWatermark = bounds.highWatermark.get(k) ?? 0n;
      let requested: bigint | null = null;
      let note: string | undefined;
      switch (to.kind) {
        case 'offset':
          requested = to.offset;
          break;
        case 'earliest':
          requested = logStart;
          break;
        case 'latest':
          requested = highWatermark;
          break;
        case 'datetime':
        case 'duration':
          requested = bounds.byTime?.get(k) ?? highWatermark;
          break;
        case 'shift':
          if (current === null) note = 'no stored position to shift';
          else requested = current + to.by;
          break;
        case 'checkpoint':
          requested = fromDb!.get(k) ?? null;
          if (requested === null) note = `not in checkpoint ${to.name}`;
          break;
        case 'time-of-commit':
          requested = fromDb!.get(k) ?? null;
          if (requested === null) note = 'no commit history for this partition';
          break;
        case 'group':
          requested = fromDb!.get(k) ?? null;
          if (requested === null) note = `group ${to.group} has no position here`;
          break;
      }
      let next = requested;
      let clamped: ResetPlanEntry['clamped'];
      if (next !== null && next < logStart) {
        next = logStart;
        clamped = 'log-start';
      } else if (next !== null && next > highWatermark) {
        next = highWatermark;
        clamped = 'high-watermark';
      }
      if (clamped) {
        note = `requested ${requested} is outside the log [${logStart}, ${highWatermark}]; clamped to ${clamped === 'log-start' ? 'the log start' : 'the high watermark'}`;
      }
      if (next === null) next = current;
      const changes = next !== null && (current === null || next !== current);
      entries.push({
        topic: s.topic,
        partition,
        current,
        requested,
        next,
        logStart,
        highWatermark,
        ...(clamped ? { clamped } : {}),
        reprocess: current !== null && next !== null && next < current ? current - next : 0n,
        skip: current !== null && next !== null && next > current ? next - current : 0n,
        changes,
        owner: row?.owner ?? null,
        epoch: row?.epoch ?? null,
        ...(note ? { note } : {}),
      });
    }
  }
  return {
    group: request.group,
    target: to,
    description: describeTarget(to),
    executed: false,
    entries,
    reprocess: entries.reduce((a, e) => a + e.reprocess, 0n),
    skip: entries.reduce((a, e) => a + e.skip, 0n),
  };
}

/** Groups partitions by topic, optionally narrowed to `topics`. */
export function scopeFrom(parts: Array<{ topic: string; partition: number }>, topics: TopicScope[] | undefined): TopicScope[] {
  const byTopic = new Map<string, Set<number>>();
  for (const p of parts) byTopic.set(p.topic, (byTopic.get(p.topic) ?? new Set()).add(p.partition));
  const out: TopicScope[] = [];
  for (const [topic, set] of [...byTopic].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const filter = topics?.find((t) => t.topic === topic);
    if (topics && !filter) continue;
    const partitions = [...set].filter((p) => !filter?.partitions || filter.partitions.includes(p)).sort((a, b) => a - b);
    if (partitions.length > 0) out.push({ topic, partitions });
  }
  if (topics && out.length === 0) {
    throw new ConfigError(`None of ${topics.map((t) => t.topic).join(', ')} has a stored position in the source.`);
  }
  return out;
}
