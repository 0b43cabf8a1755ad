import type { TopicPartition } from '../reader/types.js';

/** A live worker as the assignment sees it: its id and, optionally, its cap and its weight. */
export interface AssignmentWorker {
  workerId: string;
  /** Its cap (`maxPartitions`); undefined: no cap of its own. */
  maxPartitions?: number | undefined;
  /** Its share relative to the others' (`weight`, a positive integer); undefined: 1. */
  weight?: number | undefined;
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

const weightOf = (w: AssignmentWorker) =>
  w.weight !== undefined && Number.isFinite(w.weight) && w.weight > 0 ? Math.floor(w.weight) || 1 : 1;
const capOf = (w: AssignmentWorker) =>
  w.maxPartitions === undefined || w.maxPartitions === null ? Number.POSITIVE_INFINITY : Math.max(0, w.maxPartitions);

/**
 * How many partitions each worker (sorted by id) should own: shares proportional to the weights,
 * no worker above its cap (the others carry what a capped worker cannot: water-filling), in whole
 * partitions by largest remainder. Ties of the remainder go to the workers that own the most above
 * their whole share now (`owned`), then by id, so that the extra partitions stay where they are: a
 * join makes only as many partitions move as the newcomer takes. With equal weights and no caps
 * every worker gets ⌊P/N⌋ or ⌈P/N⌉. The quotas add up to P unless the caps add up to less.
 */
export function quotas(workers: readonly AssignmentWorker[], total: number, owned: readonly number[] = []): number[] {
  const n = workers.length;
  const out = new Array<number>(n).fill(0);
  if (n === 0 || total <= 0) return out;
  const caps = workers.map(capOf);
  const weights = workers.map(weightOf);
  let open = workers.map((_, i) => i);
  let left = total;
  // Fix at their cap the workers whose proportional share is above it, until none is.
  for (;;) {
    const sum = open.reduce((a, i) => a + weights[i]!, 0);
    const over = open.filter((i) => left * weights[i]! > caps[i]! * sum);
    if (over.length === 0 || sum === 0) break;
    for (const i of over) {
      out[i] = caps[i]!;
      left -= caps[i]!;
    }
    open = open.filter((i) => !over.includes(i));
  }
  if (open.length === 0 || left <= 0) return out;
  // Integer arithmetic: share_i = left * w_i / sum, whole part and remainder exact.
  const sum = open.reduce((a, i) => a + weights[i]!, 0);
  let given = 0;
  const rema = new Map<number, number>();
  for (const i of open) {
    out[i] = Math.floor((left * weights[i]!) / sum);
    rema.set(i, (left * weights[i]!) % sum);
    given += out[i]!;
  }
  const extra = [...open]
    .filter((i) => rema.get(i)! > 0)
    .sort(
      (a, b) =>
        rema.get(b)! - rema.get(a)! ||
        (owned[b] ?? 0) - out[b]! - ((owned[a] ?? 0) - out[a]!) ||
        cmp(workers[a]!.workerId, workers[b]!.workerId),
    );
  for (let k = 0; k < left - given && k < extra.length; k++) out[extra[k]!]! += 1;
  return out;
}

/**
 * The target assignment every live worker computes alike, from the same view: the live workers,
 * the group's partitions and who owns them now (live owners with a live lease, read in the same
 * snapshot as the live list). Sticky: each worker keeps what it owns up to its quota (see
 * {@link quotas}; the partitions it keeps above are those it scores highest), and only the rest
 * (unowned, owned by a worker no longer live, or above an owner's quota) is placed, by rendezvous
 * (highest-random-weight) hashing among the workers below their quota: each (worker, partition)
 * pair gets a score from a hash of both and the pairs are taken from the highest score down, a
 * partition going to the first worker with room left. Inputs are sorted first, so workers that see
 * the same view compute the same map, with no coordination beyond the store.
 *
 * What it moves: a join only the newcomer's quota (at most ⌈P/N⌉), a leave or a death only the
 * leaver's partitions (equal weights, no caps); the loads stay within one of each other. Once the
 * owners are the target, computing it again gives the same target, so a group at rest stays put.
 * Without `owners` it is plain bounded rendezvous over the live workers (what a cold start places).
 *
 * Returns partition key → worker id; a partition is missing when the caps leave no room for it.
 */
export function assignPartitions(
  workers: readonly AssignmentWorker[],
  partitions: readonly TopicPartition[],
  owners: ReadonlyMap<string, string> = new Map(),
): Map<string, string> {
  const ws = [...workers].sort((a, b) => cmp(a.workerId, b.workerId));
  const ps = [...new Set(partitions.map(partitionKey))].sort(cmp);
  const out = new Map<string, string>();
  if (ws.length === 0 || ps.length === 0) return out;
  const index = new Map(ws.map((w, i) => [w.workerId, i] as const));
  const wh = ws.map((w) => fnv1a(w.workerId));
  const ph = ps.map(fnv1a);
  // What each live worker owns now, among these partitions.
  const mine: number[][] = ws.map(() => []);
  for (let p = 0; p < ps.length; p++) {
    const owner = owners.get(ps[p]!);
    const w = owner === undefined ? undefined : index.get(owner);
    if (w !== undefined) mine[w]!.push(p);
  }
  const quota = quotas(
    ws,
    ps.length,
    mine.map((m) => m.length),
  );
  const load = new Array<number>(ws.length).fill(0);
  const placed = new Uint8Array(ps.length);
  for (let w = 0; w < ws.length; w++) {
    const owned = mine[w]!;
    if (owned.length > quota[w]!) {
      const score = (p: number) => mix(wh[w]!, ph[p]!);
      owned.sort((a, b) => score(b) - score(a) || a - b);
    }
    for (const p of owned.slice(0, quota[w]!)) {
      out.set(ps[p]!, ws[w]!.workerId);
      placed[p] = 1;
      load[w]! += 1;
    }
  }
  const rest: number[] = [];
  for (let p = 0; p < ps.length; p++) if (!placed[p]) rest.push(p);
  const open: number[] = [];
  for (let w = 0; w < ws.length; w++) if (load[w]! < quota[w]!) open.push(w);
  if (rest.length === 0 || open.length === 0) return out;
  const n = open.length;
  // One number per pair: (inverted score) * 2^21 + pair index, exact in a double while there are
  // fewer than 2^21 pairs, so a native numeric sort orders them by score (highest first) and then
  // by position (partition, then worker) without a comparator: ~10x faster for 50k pairs.
  const pairs = rest.length * n;
  const packed = pairs < 2 ** 21;
  const keys = new Float64Array(pairs);
  const scores = packed ? undefined : new Float64Array(pairs);
  for (let r = 0; r < rest.length; r++) {
    const h = ph[rest[r]!]!;
    for (let k = 0; k < n; k++) {
      const i = r * n + k;
      const score = mix(wh[open[k]!]!, h);
      if (scores) {
        scores[i] = score;
        keys[i] = i;
      } else keys[i] = (0xffffffff - score) * 2 ** 21 + i;
    }
  }
  if (scores) keys.sort((x, y) => scores[y]! - scores[x]! || x - y);
  else keys.sort();
  let remaining = rest.length;
  for (let k = 0; k < keys.length && remaining > 0; k++) {
    const i = scores ? keys[k]! : keys[k]! % 2 ** 21;
    const r = Math.floor(i / n);
    const w = open[i - r * n]!;
    const p = rest[r]!;
    if (placed[p] || load[w]! >= quota[w]!) continue;
    placed[p] = 1;
    out.set(ps[p]!, ws[w]!.workerId);
    load[w]! += 1;
    remaining--;
  }
  return out;
}
