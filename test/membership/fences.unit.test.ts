/**
 * The zombie test's count of refusals: a zombie's stale claim is refused whatever finds it first
 * (its late commit, its lease renewal, the release of its hand-off or stop), and each trial waits
 * for any of them, so the count that must reach the number of trials counts them all.
 */
import { describe, expect, it } from 'vitest';
import { fenceCounts } from './fences.js';

describe('fenceCounts', () => {
  it('counts every fence a worker reported, by what found it', () => {
    const events = [
      'event claim 3 41',
      'event fenced 3 41 dropped commit',
      'event fenced 4 12 dropped renewal',
      'event release 5 7',
      'event fenced 5 8 dropped release',
      'event fenced 1 9 reclaimed commit',
    ];
    expect(fenceCounts(events)).toEqual({ commit: 2, renewal: 1, release: 1, total: 4 });
    expect(fenceCounts(['event claim 0 1', 'event release 0 1'])).toEqual({ commit: 0, renewal: 0, release: 0, total: 0 });
  });
});
