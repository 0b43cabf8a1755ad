import { describe, expect, it } from 'vitest';
import { defineApp } from '../app/define-app.js';
import { string } from '../codec/codecs.js';
import type { Logger } from '../logger.js';
import type { CommitInfo } from '../runtime/events.js';
import { createWorker } from '../runtime/worker.js';
import { MemoryLog } from '../testing/memory-log.js';
import { MemoryStore, type MemoryTx } from '../testing/memory-store.js';
import { until } from '../testing/until.js';
import { createOffsetMirror } from './kafka-offset-mirror.js';

/** A logger that keeps warnings, to see that failing listeners were reported. */
function recordingLogger(warnings: string[]): Logger {
  const log: Logger = {
    debug() {},
    info() {},
    warn: (m, f) => warnings.push(`${m} ${JSON.stringify(f)}`),
    error() {},
    child: () => log,
  };
  return log;
}

describe('worker events', () => {
  it('the Kafka offset mirror and user listeners run side by side; a throwing or rejecting listener is harmless', async () => {
    const log = new MemoryLog().createTopic('t', 2);
    for (const p of [0, 1])
      log.append(
        't',
        p,
        Array.from({ length: 25 }, (_, i) => ({ value: `${p}:${i}` })),
      );
    const written = new Map<string, bigint>();
    const mirror = createOffsetMirror({
      groupId: 'mirror',
      logger: recordingLogger([]),
      writer: {
        async setOffsets(groupId, topic, offsets) {
          for (const [p, o] of offsets) written.set(`${groupId}/${topic}/${p}`, o);
        },
        async close() {},
      },
    });
    const warnings: string[] = [];
    const app = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: string() }, (m, ctx) => {
      ctx.tx.update<number>(`n:${m.partition}`, (v = 0) => v + 1);
    });
    const w = createWorker(app, {
      store: new MemoryStore(),
      reader: log,
      logger: recordingLogger(warnings),
      fetchMaxWaitMs: 20,
      batchMaxRecords: 10,
      closeOnStop: false,
    });
    const seen: CommitInfo[] = [];
    w.on('commit', mirror.onCommit);
    w.on('commit', () => {
      throw new Error('listener bug');
    });
    w.on('commit', async () => {
      throw new Error('async listener bug');
    });
    w.on('commit', (c) => {
      seen.push(c);
    });
    const removed = w.on('commit', () => {
      throw new Error('removed before start: never called');
    });
    removed();
    await w.start();
    await until(() => w.progress().every((p) => p.nextOffset === 25n), 'both partitions applied');
    await w.stop();
    await mirror.close();

    expect(w.state).toBe('stopped');
    // Every commit reached the user listener, in spite of the failing ones before it.
    expect(seen.reduce((n, c) => n + c.records, 0)).toBe(50);
    expect(written.get('mirror/t/0')).toBe(25n);
    expect(written.get('mirror/t/1')).toBe(25n);
    expect(mirror.failures).toBe(0);
    expect(warnings.some((m) => m.includes('listener bug'))).toBe(true);
    expect(warnings.some((m) => m.includes('async listener bug'))).toBe(true);
    expect(warnings.some((m) => m.includes('never called'))).toBe(false);
  });
});
