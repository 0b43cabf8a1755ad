import { ConfigError } from '@oncely/core';
import { describe, expect, it } from 'vitest';
import { type KafkaBounds, planReset, type StoredPosition, scopeFrom, tp } from './reset-plan.js';
import type { ResetTarget } from './types.js';

const scope = [{ topic: 't', partitions: [0, 1, 2] }];
/** Logs: partition 0 spans [10, 100], 1 spans [0, 50], 2 spans [0, 20]. */
const bounds: KafkaBounds = {
  logStart: new Map([
    [tp('t', 0), 10n],
    [tp('t', 1), 0n],
    [tp('t', 2), 0n],
  ]),
  highWatermark: new Map([
    [tp('t', 0), 100n],
    [tp('t', 1), 50n],
    [tp('t', 2), 20n],
  ]),
};
/** Stored: 0 at 40 (owned), 1 at 50, 2 never seen. */
const stored = new Map<string, StoredPosition>([
  [tp('t', 0), { topic: 't', partition: 0, nextOffset: 40n, epoch: 3n, owner: 'w1' }],
  [tp('t', 1), { topic: 't', partition: 1, nextOffset: 50n, epoch: 1n, owner: null }],
]);
const plan = (to: ResetTarget, fromDb?: Map<string, bigint>) => planReset({ group: 'g', to }, scope, bounds, stored, fromDb);

describe('planReset (no I/O)', () => {
  it('shift moves back and counts reprocessed records; a partition without a position is left alone', () => {
    const p = plan({ kind: 'shift', by: -15n });
    expect(p.entries.map((e) => [e.partition, e.current, e.next, e.reprocess, e.changes])).toEqual([
      [0, 40n, 25n, 15n, true],
      [1, 50n, 35n, 15n, true],
      [2, null, null, 0n, false],
    ]);
    expect(p.entries[2]!.note).toBe('no stored position to shift');
    expect(p.reprocess).toBe(30n);
    expect(p.description).toBe('--shift-by -15');
    expect(p.executed).toBe(false);
    expect(p.entries[0]!.owner).toBe('w1');
    expect(p.entries[0]!.epoch).toBe(3n);
  });

  it('clamps a requested offset to the log and says so', () => {
    const p = plan({ kind: 'offset', offset: 5n });
    expect(p.entries[0]).toMatchObject({ requested: 5n, next: 10n, clamped: 'log-start', skip: 0n, reprocess: 30n });
    expect(p.entries[0]!.note).toMatch(/outside the log \[10, 100\]; clamped to the log start/);
    const high = plan({ kind: 'offset', offset: 70n });
    expect(high.entries[1]).toMatchObject({ requested: 70n, next: 50n, clamped: 'high-watermark', changes: false });
    expect(high.entries[2]).toMatchObject({ current: null, next: 20n, changes: true, skip: 0n });
  });

  it('earliest and latest read the bounds; checkpoint and group targets read the positions given', () => {
    expect(plan({ kind: 'earliest' }).entries.map((e) => e.next)).toEqual([10n, 0n, 0n]);
    expect(plan({ kind: 'latest' }).entries.map((e) => e.next)).toEqual([100n, 50n, 20n]);
    const cp = plan({ kind: 'checkpoint', name: 'before-deploy' }, new Map([[tp('t', 0), 60n]]));
    expect(cp.entries.map((e) => [e.next, e.skip, e.changes])).toEqual([
      [60n, 20n, true],
      [50n, 0n, false],
      [null, 0n, false],
    ]);
    expect(cp.entries[1]!.note).toBe('not in checkpoint before-deploy');
    expect(cp.skip).toBe(20n);
  });

  it('scopeFrom groups partitions by topic, sorted, and refuses a filter that matches nothing', () => {
    const parts = [
      { topic: 'b', partition: 1 },
      { topic: 'a', partition: 2 },
      { topic: 'b', partition: 0 },
    ];
    expect(scopeFrom(parts, undefined)).toEqual([
      { topic: 'a', partitions: [2] },
      { topic: 'b', partitions: [0, 1] },
    ]);
    expect(scopeFrom(parts, [{ topic: 'b', partitions: [1] }])).toEqual([{ topic: 'b', partitions: [1] }]);
    expect(() => scopeFrom(parts, [{ topic: 'c' }])).toThrow(ConfigError);
  });
});
