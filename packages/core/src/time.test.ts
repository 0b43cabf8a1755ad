import { describe, expect, it } from 'vitest';
import { sleep } from './time.js';

describe('sleep', () => {
  it('takes a deadline that has just passed (a negative delay) without a TimeoutNegativeWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      await sleep(-7);
      await sleep(Number.NaN);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w === 'TimeoutNegativeWarning')).toEqual([]);
  });

  it('resolves early when its signal aborts', async () => {
    const ac = new AbortController();
    const slept = sleep(60_000, ac.signal);
    ac.abort();
    await expect(slept).resolves.toBeUndefined();
  });
});
