import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../logger.js';
import { WorkerEvents } from './events.js';

describe('worker events', () => {
  it('a listener that throws or rejects, with any kind of promise, is logged and the others still run', async () => {
    const warned: string[] = [];
    const log: Logger = {
      debug() {},
      info() {},
      warn: (_m, f) => warned.push(String(f?.error)),
      error() {},
      child: () => log,
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const events = new WorkerEvents(log);
      const seen: string[] = [];
      events.on('state', () => {
        throw new Error('throws');
      });
      events.on('state', async () => {
        throw new Error('rejects');
      });
      events.on('state', () => runInNewContext('Promise.reject(new Error("foreign"))'));
      // biome-ignore lint/suspicious/noThenProperty: a hand-made thenable is the case under test
      events.on('state', () => ({ then: (_ok: unknown, fail: (e: Error) => void) => fail(new Error('thenable')) }));
      events.on('state', (s) => {
        seen.push(s);
      });
      events.emit('state', 'running');
      await new Promise((r) => setTimeout(r, 20));
      expect(seen).toEqual(['running']);
      expect(warned.sort()).toEqual(['foreign', 'rejects', 'thenable', 'throws']);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
