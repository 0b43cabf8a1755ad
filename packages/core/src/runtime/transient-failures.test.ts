import { afterEach, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import { TransientFailures } from './partition-runner.js';

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), child: () => logger };
  return Object.assign(logger, { lines });
}

const down = () => new StoreUnavailableError('down', { cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) });

describe('TransientFailures', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts every failure, logs once per change of state, and keeps saying so once a minute while it lasts', () => {
    vi.useFakeTimers({ now: 0 });
    const log = recorder();
    const t = new TransientFailures(log);
    for (let attempt = 1; attempt <= 5; attempt++) t.failed('store unavailable', down(), attempt, 100);
    expect(t.count).toBe(5);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatch(/^warn store unavailable; retrying .*"attempt":1,.*"code":"STORE_UNAVAILABLE\/ECONNREFUSED"/);

    // A minute on, still failing: one reminder at error level with the count and the time so far.
    vi.setSystemTime(60_000);
    t.failed('store unavailable', down(), 6, 100);
    t.failed('store unavailable', down(), 7, 100);
    expect(log.lines).toHaveLength(2);
    expect(log.lines[1]).toMatch(/^error store unavailable; still retrying .*"attempts":6,"failingForMs":60000/);

    // A different cause is a change of state: said at once.
    t.failed(
      'store unavailable',
      new StoreUnavailableError('lock', { cause: Object.assign(new Error('l'), { code: '55P03' }) }),
      8,
      100,
    );
    expect(log.lines).toHaveLength(3);
    expect(log.lines[2]).toMatch(/^warn .*"code":"STORE_UNAVAILABLE\/55P03"/);

    vi.setSystemTime(70_000);
    t.recovered();
    t.recovered(); // once
    expect(log.lines).toHaveLength(4);
    expect(log.lines[3]).toMatch(/^info recovered: retried until it passed .*"attempts":8,"failedForMs":70000/);

    // The next outage starts a new state: logged again, the count goes on.
    t.failed('store unavailable', down(), 1, 100);
    expect(log.lines).toHaveLength(5);
    expect(t.count).toBe(9);
  });
});
