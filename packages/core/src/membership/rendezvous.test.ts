import { describe, expect, it } from 'vitest';
import type { TopicPartition } from '../reader/types.js';
import { type AssignmentWorker, assignPartitions } from './rendezvous.js';

const parts = (n: number, topic = 't'): TopicPartition[] => Array.from({ length: n }, (_, partition) => ({ topic, partition }));
const workers = (n: number, prefix = 'w'): AssignmentWorker[] =>
  Array.from({ length: n }, (_, i) => ({ workerId: `${prefix}-${i}` }));
const loads = (a: Map<string, string>) => {
  const m = new Map<string, number>();
  for (const w of a.values()) m.set(w, (m.get(w) ?? 0) + 1);
  return m;
};
const moved = (a: Map<string, string>, b: Map<string, string>) => [...a].filter(([p, w]) => b.get(p) !== w).length;

describe('rendezvous assignment', () => {
  it('is the same whatever order the workers and partitions come in', () => {
    const ws = workers(7);
    const ps = [...parts(30, 'a'), ...parts(11, 'b')];
    const a = assignPartitions(ws, ps);
    const b = assignPartitions([...ws].reverse(), [...ps].reverse());
    expect([...b].sort()).toEqual([...a].sort());
    expect(a.size).toBe(41);
  });

  it('gives every partition an owner and no worker more than its share', () => {
    for (const [p, n] of [
      [8, 3],
      [1, 5],
      [100, 7],
      [1000, 50],
    ] as const) {
      const a = assignPartitions(workers(n), parts(p));
      expect(a.size).toBe(p);
      for (const load of loads(a).values()) expect(load).toBeLessThanOrEqual(Math.ceil(p / n));
    }
  });

  it('respects caps, and uncapped workers carry what capped ones cannot', () => {
    const ws: AssignmentWorker[] = [{ workerId: 'a', maxPartitions: 1 }, { workerId: 'b' }, { workerId: 'c' }];
    const a = assignPartitions(ws, parts(9));
    expect(a.size).toBe(9);
    expect(loads(a).get('a')).toBe(1);
    expect(loads(a).get('b')).toBe(4);
    const capped = assignPartitions(
      ws.map((w) => ({ ...w, maxPartitions: 2 })),
      parts(9),
    );
    expect(capped.size).toBe(6); // three partitions have no room
  });

  it('moves few partitions when a worker joins or leaves', () => {
    let joinMoves = 0;
    let leaveMoves = 0;
    const trials = 10;
    for (let t = 0; t < trials; t++) {
      const ws = workers(10, `trial${t}`);
      const ps = parts(100);
      const before = assignPartitions(ws, ps);
      joinMoves += moved(before, assignPartitions([...ws, { workerId: `new-${t}` }], ps));
      leaveMoves += moved(before, assignPartitions(ws.slice(1), ps));
    }
    // A join must move at least ⌊100/11⌋ = 9 to the newcomer, a leave the leaver's 10; rehashing
    // everything would move ~90. The bounded loads cost some extra moves on top of the minimum.
    expect(joinMoves / trials).toBeLessThan(20);
    expect(leaveMoves / trials).toBeLessThan(20);
  });
});
