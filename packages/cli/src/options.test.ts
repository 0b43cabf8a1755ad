import { ConfigError } from '@oncely/core';
import { describe, expect, it } from 'vitest';
import { resetTarget } from './commands/offsets.js';
import { parseBigint, parseDuration, parseTopics } from './options.js';
import { progressLine, summarize } from './progress.js';

describe('cli parsing', () => {
  it('parses --topic T[:partitions] with lists and ranges', () => {
    expect(parseTopics(['orders', 'payments:0,2,4-6'])).toEqual([
      { topic: 'orders' },
      { topic: 'payments', partitions: [0, 2, 4, 5, 6] },
    ]);
    expect(() => parseTopics(['payments:3-1'])).toThrow(ConfigError);
    expect(() => parseTopics(['payments:x'])).toThrow(/bad partition list/);
  });

  it('parses ISO 8601 durations like kafka-consumer-groups --by-duration', () => {
    expect(parseDuration('--by-duration', 'PT30M')).toBe(30 * 60_000);
    expect(parseDuration('--by-duration', 'P1DT2H')).toBe(26 * 3_600_000);
    expect(parseDuration('--by-duration', 'PT1.5S')).toBe(1500);
    for (const bad of ['P', 'PT', '30m', 'P1H']) expect(() => parseDuration('--by-duration', bad)).toThrow(ConfigError);
  });

  it('reads exactly one reset target; offsets are bigint', () => {
    expect(resetTarget({ group: 'g', shiftBy: '-9007199254740993' })).toEqual({ kind: 'shift', by: -9007199254740993n });
    expect(resetTarget({ group: 'g', toEarliest: true })).toEqual({ kind: 'earliest' });
    expect(() => resetTarget({ group: 'g' })).toThrow(/exactly one/);
    expect(() => resetTarget({ group: 'g', toEarliest: true, toOffset: '3' })).toThrow(/got 2/);
    expect(() => parseBigint('--to-offset', '-1')).toThrow(/non-negative/);
  });

  it('computes bounded-run progress from worker.progress()', () => {
    const base = {
      topic: 't',
      epoch: 1n,
      caughtUp: false,
      committedBatches: 0,
      committedRecords: 0,
      deadLetteredRecords: 0,
      transientErrors: 0,
      highWatermark: undefined,
    };
    const s = summarize([
      { ...base, partition: 0, startOffset: 10n, nextOffset: 60n, target: 110n },
      { ...base, partition: 1, startOffset: 0n, nextOffset: 0n, target: 100n },
      // rewound below its start: counts as nothing done, never negative
      { ...base, partition: 2, startOffset: 50n, nextOffset: 20n, target: 70n },
    ]);
    expect(s).toEqual({ done: 50n, total: 220n });
    expect(progressLine(50n, 200n, 1000, false)).toBe('progress done=50 total=200 percent=25.0 rate=50/s eta=3s');
    expect(progressLine(200n, 200n, 2000, true)).toMatch(/^\[#{30}\] 200\/200 records 100\.0%/);
  });
});
