import type { PartitionProgress } from '@oncely/core';
import { describe, expect, it } from 'vitest';
import { reportProgress } from './progress.js';

const partition = (nextOffset: bigint): PartitionProgress => ({
  topic: 't',
  partition: 0,
  nextOffset,
  highWatermark: 10n,
  epoch: 1n,
  startOffset: 0n,
  target: 10n,
  caughtUp: false,
  committedBatches: 0,
  committedRecords: 0,
  deadLetteredRecords: 0,
  transientErrors: 0,
});

function stream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream };
}

describe('reportProgress', () => {
  it('prints the final state on stop(), and nothing more on stop({ final: false }) after a failure', () => {
    const done = stream(false);
    reportProgress(() => [partition(10n)], { stream: done.stream, intervalMs: 60_000 })();
    expect(done.writes).toHaveLength(1);
    expect(done.writes[0]).toMatch(/^progress done=10 total=10 percent=100\.0 /);

    const failed = stream(false);
    const stop = reportProgress(() => [partition(3n)], { stream: failed.stream, intervalMs: 60_000 });
    stop({ final: false });
    stop();
    expect(failed.writes).toEqual([]);
  });

  it('erases the bar on a terminal when stopped without a final line', async () => {
    const tty = stream(true);
    const stop = reportProgress(() => [partition(3n)], { stream: tty.stream, intervalMs: 5 });
    await new Promise((r) => setTimeout(r, 30));
    expect(tty.writes.length).toBeGreaterThan(0);
    stop({ final: false });
    expect(tty.writes.at(-1)).toBe('\r\x1b[2K');
  });
});
