/** What found a fence, as the ledger worker's trace prints it: `event fenced <p> <epoch> <action> <detectedBy>`. */
export type FenceDetection = 'commit' | 'renewal' | 'release';

/**
 * The fences a worker reported, by what found each (its late commit refused, its lease renewal, or
 * the release of a hand-off or stop), and all of them.
 */
export function fenceCounts(events: readonly string[]): Record<FenceDetection, number> & { total: number } {
  const counts = { commit: 0, renewal: 0, release: 0, total: 0 };
  for (const line of events) {
    const by = /^event fenced \d+ \d+ \S+ (commit|renewal|release)$/.exec(line)?.[1] as FenceDetection | undefined;
    if (!by) continue;
    counts[by]++;
    counts.total++;
  }
  return counts;
}
