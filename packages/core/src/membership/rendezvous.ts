import type { TopicPartition } from '../reader/types.js';

/** A live worker as the assignment sees it: its id and, optionally, the most partitions it takes. */
export interface AssignmentWorker {
  workerId: string;
  /** Its cap (`maxPartitions`); undefined: no cap of its own. */
  maxPartitions?: number | undefined;
}

/** FNV-1a over the UTF-16 code units: fast, and the same in every process. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finalizer: spreads the combined hashes so that every bit of the score depends on both. */
function mix(a: number, b: number): number {
  let h = (a ^ Math.imul(b, 0x9e3779b1)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `topic:partition`, the key partitions are known by in a target. */
export function partitionKey(tp: TopicPartition): string {
  return `${tp.topic}:${tp.partition}`;
}

/**
 * How many partitions each worker may take: the lowest level L with Σ min(cap, L) ≥ P, so that
 * workers without a cap (or a high one) carry what capped workers cannot, and the load is as even
 * as the caps allow (⌈P/N⌉ when no worker is capped).
 */
function capacities(workers: readonly AssignmentWorker[], total: number): number[] {
  const caps = workers.map((w) => (w.maxPartitions === undefined ? Number.POSITIVE_INFINITY : Math.max(0, w.maxPartitions)));
  let level = Math.ceil(total / Math.max(1, workers.length));
  const room = (l: number) => caps.reduce((a, c) => a + Math.min(c, l), 0);
  while (room(level) < total && level < total) level++;
  return caps.map((c) => Math.min(c, level));
}

/**
 * The target assignment every live worker computes alike: rendezvous (highest-random-weight)
 * hashing with bounded loads. Each (worker, partition) pair gets a score from a hash of both; the
 * pairs are taken from the highest score down, a partition going to the first worker that has room
 * left (see capacities). Inputs are sorted first, so workers that see the same live list and the
 * same partitions compute the same map, with no coordination beyond the store.
 *
 * Why this scheme: pure rendezvous moves only about P/N partitions when a worker joins or leaves,
 * but its loads vary (with 1,000 partitions on 50 workers, the busiest took twice its share); the
 * bound keeps every worker at its share (⌈P/N⌉) at the price of some extra moves, measured in
 * membership/rendezvous.test.ts and bench/README.md.
 *
 * Returns partition key → worker id; a partition is missing when the caps leave no room for it.
 */
export function assignPartitions(
  workers: readonly AssignmentWorker[],
  partitions: readonly TopicPartition[],
): Map<string, string> {
  const ws = [...workers].sort((a, b) => cmp(a.workerId, b.workerId));
  const ps = [...partitions].map(partitionKey).sort(cmp);
  const out = new Map<string, string>();
  if (ws.length === 0 || ps.length === 0) return out;
  const left = capacities(ws, ps.length);
  const wh = ws.map((w) => fnv1a(w.workerId));
  const n = ws.length;
  // One number per pair: (inverted score) * 2^21 + pair index, exact in a double while there are
  // fewer than 2^21 pairs, so a native numeric sort orders them by score (highest first) and then
  // by position (partition, then worker) without a comparator: ~10x faster for 50k pairs.
  const pairs = ps.length * n;
  const packed = pairs < 2 ** 21;
  const keys = new Float64Array(pairs);
  const scores = packed ? undefined : new Float64Array(pairs);
  for (let p = 0; p < ps.length; p++) {
    const ph = fnv1a(ps[p]!);
    for (let w = 0; w < n; w++) {
      const i = p * n + w;
      const score = mix(wh[w]!, ph);
      if (scores) {
        scores[i] = score;
        keys[i] = i;
      } else keys[i] = (0xffffffff - score) * 2 ** 21 + i;
    }
  }
  if (scores) keys.sort((x, y) => scores[y]! - scores[x]! || x - y);
  else keys.sort();
  const taken = new Uint8Array(ps.length);
  let remaining = ps.length;
  for (let k = 0; k < keys.length && remaining > 0; k++) {
    const i = scores ? keys[k]! : keys[k]! % 2 ** 21;
    const p = Math.floor(i / n);
    const w = i - p * n;
    if (taken[p] || left[w]! <= 0) continue;
    taken[p] = 1;
    out.set(ps[p]!, ws[w]!.workerId);
    left[w] = left[w]! - 1;
    remaining--;
  }
  return out;
}
