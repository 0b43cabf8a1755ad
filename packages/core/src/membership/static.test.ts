import { describe, expect, it } from 'vitest';
import { parsePartitionSelector, parseWorkerSplit, staticAssignment } from './static.js';

const topics = new Map([
  ['payments', [0, 1, 2, 3]],
  ['orders', [0, 1]],
]);

describe('static membership', () => {
  it('parses selectors with ranges, lists and wildcards', () => {
    const sel = parsePartitionSelector('payments:0-1,3,orders:*');
    expect([...(sel.get('payments') ?? [])]).toEqual([0, 1, 3]);
    expect(sel.get('orders')).toBeNull();
    expect(staticAssignment(topics, { selection: sel })).toEqual([
      { topic: 'orders', partition: 0 },
      { topic: 'orders', partition: 1 },
      { topic: 'payments', partition: 0 },
      { topic: 'payments', partition: 1 },
      { topic: 'payments', partition: 3 },
    ]);
  });

  it('refuses bad selectors and partitions that do not exist', () => {
    expect(() => parsePartitionSelector('payments:3-1')).toThrow(/reversed/);
    expect(() => parsePartitionSelector('payments:x')).toThrow(/not a partition/);
    expect(() => parsePartitionSelector('')).toThrow(/empty entry/);
    expect(() => staticAssignment(topics, { selection: parsePartitionSelector('payments:9') })).toThrow(/has partitions 0,1,2,3/);
    expect(() => staticAssignment(topics, { selection: parsePartitionSelector('nope') })).toThrow(/no handler/);
  });

  it('splits deterministically so n workers cover every partition once', () => {
    const seen: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const split = parseWorkerSplit(`${i}/4`);
      for (const tp of staticAssignment(topics, { split })) seen.push(`${tp.topic}:${tp.partition}`);
    }
    expect(seen.sort()).toEqual(['orders:0', 'orders:1', 'payments:0', 'payments:1', 'payments:2', 'payments:3']);
    expect(() => parseWorkerSplit('5/4')).toThrow(/1 <= i <= n/);
    expect(() => parseWorkerSplit('0/4')).toThrow();
  });
});
