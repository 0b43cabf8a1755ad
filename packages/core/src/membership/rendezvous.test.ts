import { describe, expect, it } from 'vitest';
import type { TopicPartition } from '../reader/types.js';
import { type AssignmentWorker, assignPartitions, quotas } from './rendezvous.js';

const parts = (n: number, topic = 't'): TopicPartition[] => Array.from({ length: n }, (_, partition) => ({ topic, partition }));
const workers = (n: number, prefix = 'w'): AssignmentWorker[] =>
  Array.from({ length: n }, (_, i) => ({ workerId: `${prefix}-${i}` }));
const loads = (a: Map<string, string>) => {
  const m = new Map<string, number>();
  for (const w of a.values()) m.set(w, (m.get(w) ?? 0) + 1);
  return m;
};
const moved = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>) =>
  [...b].filter(([p, w]) => a.get(p) !== w).length;
/** The owners a group converges to from a cold start: the target, claimed. */
const settle = (ws: readonly AssignmentWorker[], ps: readonly TopicPartition[]) => assignPartitions(ws, ps);
/** Only live owners count: the owners of workers not in `ws` are left out (what the heartbeat returns). */
const liveOwners = (owners: ReadonlyMap<string, string>, ws: readonly AssignmentWorker[]) => {
  const ids = new Set(ws.map((w) => w.workerId));
  return new Map([...owners].filter(([, w]) => ids.has(w)));
};

describe('the assignment', () => {
  it('is the same whatever order the workers, partitions and owners come in', () => {
    const ws = workers(7);
    const ps = [...parts(30, 'a'), ...parts(11, 'b')];
    const owners = new Map([...settle(workers(5), ps)].slice(0, 25));
    const a = assignPartitions(ws, ps, owners);
    const b = assignPartitions([...ws].reverse(), [...ps].reverse(), new Map([...owners].reverse()));
    expect([...b].sort()).toEqual([...a].sort());
    expect(a.size).toBe(41);
  });

  it('gives every partition an owner and every worker ⌊P/N⌋ or ⌈P/N⌉, with or without owners', () => {
    for (const [p, n] of [
      [8, 3],
      [1, 5],
      [100, 7],
      [1000, 50],
    ] as const) {
      const cold = settle(workers(n), parts(p));
      // Skewed owners: the first worker owns everything.
      const skewed = assignPartitions(workers(n), parts(p), new Map(parts(p).map((tp) => [`t:${tp.partition}`, 'w-0'])));
      for (const a of [cold, skewed]) {
        expect(a.size).toBe(p);
        const ls = [...loads(a).values()];
        for (const load of ls) expect(load).toBeLessThanOrEqual(Math.ceil(p / n));
        if (p >= n) expect(ls).toHaveLength(n);
        for (const load of ls) expect(load).toBeGreaterThanOrEqual(Math.floor(p / n));
      }
    }
  });

  it('is stable: once the owners are the target, the target is the same', () => {
    for (let t = 0; t < 20; t++) {
      const ws = workers(3 + (t % 9), `s${t}`);
      const ps = parts(10 + t * 13);
      let owners = settle(ws, ps);
      expect([...assignPartitions(ws, ps, owners)].sort()).toEqual([...owners].sort());
      // And after a join, a leave and a death, applied in turn.
      for (const next of [[...ws, { workerId: `s${t}-new` }], ws.slice(1), ws.slice(2)]) {
        owners = assignPartitions(next, ps, liveOwners(owners, next));
        expect(moved(owners, assignPartitions(next, ps, owners)), `trial ${t}`).toBe(0);
      }
    }
  });

  it('a join moves at most ⌈P/N⌉ partitions, all to the newcomer; a leave or a death only the leaver’s', () => {
    for (const [p, n] of [
      [6, 2],
      [100, 10],
      [1000, 50],
      [7, 10],
      [64, 7],
    ] as const) {
      for (let t = 0; t < 5; t++) {
        const ws = workers(n, `j${t}`);
        const ps = parts(p);
        const before = settle(ws, ps);
        const joined = [...ws, { workerId: `j${t}-new` }];
        const afterJoin = assignPartitions(joined, ps, before);
        const share = Math.ceil(p / (n + 1));
        expect(moved(before, afterJoin), `join ${p}/${n}`).toBeLessThanOrEqual(share);
        expect(moved(before, afterJoin)).toBe(loads(afterJoin).get(`j${t}-new`) ?? 0);
        expect(Math.max(...loads(afterJoin).values())).toBeLessThanOrEqual(share);
        // A leave (or death: the same view once the heartbeat has aged out) of a worker in the middle.
        const gone = joined[Math.floor(joined.length / 2)]!.workerId;
        const rest = joined.filter((w) => w.workerId !== gone);
        const afterLeave = assignPartitions(rest, ps, liveOwners(afterJoin, rest));
        const held = [...afterJoin.values()].filter((w) => w === gone).length;
        expect(moved(afterJoin, afterLeave), `leave ${p}/${n}`).toBe(held);
        expect(Math.max(...loads(afterLeave).values())).toBeLessThanOrEqual(Math.ceil(p / rest.length));
      }
    }
  });

  it('converges when the workers claim and hand off one at a time, each from its own view', () => {
    // A worker hands a partition off (releases it) when its target no longer names it, and claims a
    // targeted one only when it is free; each step one random worker acts on its own fresh view.
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let t = 0; t < 10; t++) {
      const ps = parts(40 + t);
      const ws = workers(4 + (t % 4), `c${t}`);
      const owners = new Map(settle(ws, ps));
      const group = [...ws, { workerId: `c${t}-new` }].filter((_, i) => i !== 1);
      for (const [p, w] of [...owners]) if (!group.some((g) => g.workerId === w)) owners.delete(p);
      let steps = 0;
      for (; steps < 10_000; steps++) {
        const target = assignPartitions(group, ps, owners);
        if (moved(owners, target) === 0) break;
        const me = group[Math.floor(random() * group.length)]!.workerId;
        for (const [p, w] of [...owners]) if (w === me && target.get(p) !== me) owners.delete(p);
        for (const [p, w] of target) if (w === me && !owners.has(p)) owners.set(p, me);
      }
      expect(steps, `trial ${t}`).toBeLessThan(10_000);
      expect(owners.size).toBe(ps.length);
      const ls = [...loads(owners).values()];
      expect(Math.max(...ls) - Math.min(...ls)).toBeLessThanOrEqual(1);
    }
  });

  it('respects caps, and uncapped workers carry what capped ones cannot', () => {
    const ws: AssignmentWorker[] = [{ workerId: 'a', maxPartitions: 1 }, { workerId: 'b' }, { workerId: 'c' }];
    const a = assignPartitions(ws, parts(9));
    expect(a.size).toBe(9);
    expect(loads(a).get('a')).toBe(1);
    expect(loads(a).get('b')).toBe(4);
    // A capped owner of everything keeps only its cap.
    const owned = assignPartitions(ws, parts(9), new Map(parts(9).map((tp) => [`t:${tp.partition}`, 'a'])));
    expect([loads(owned).get('a'), loads(owned).get('b'), loads(owned).get('c')]).toEqual([1, 4, 4]);
    const capped = assignPartitions(
      ws.map((w) => ({ ...w, maxPartitions: 2 })),
      parts(9),
    );
    expect(capped.size).toBe(6); // three partitions have no room
  });

  it('shares in proportion to the weights, within the caps', () => {
    expect(
      quotas(
        [
          { workerId: 'a', weight: 1 },
          { workerId: 'b', weight: 3 },
        ],
        8,
      ),
    ).toEqual([2, 6]);
    expect(quotas([{ workerId: 'a', weight: 1 }, { workerId: 'b', weight: 2 }, { workerId: 'c' }], 10)).toEqual([3, 5, 2]);
    expect(quotas([{ workerId: 'a', weight: 5, maxPartitions: 3 }, { workerId: 'b' }, { workerId: 'c' }], 11)).toEqual([3, 4, 4]);
    const ws: AssignmentWorker[] = [
      { workerId: 'x', weight: 1 },
      { workerId: 'y', weight: 3 },
    ];
    const a = assignPartitions(ws, parts(8));
    expect([loads(a).get('x'), loads(a).get('y')]).toEqual([2, 6]);
    // From any owners: x owning everything keeps its 2.
    const b = assignPartitions(ws, parts(8), new Map(parts(8).map((tp) => [`t:${tp.partition}`, 'x'])));
    expect([loads(b).get('x'), loads(b).get('y')]).toEqual([2, 6]);
    expect(moved(b, assignPartitions(ws, parts(8), b))).toBe(0);
  });
});
