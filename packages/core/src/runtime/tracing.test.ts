import { describe, expect, it } from 'vitest';
import { NO_TRACE, traceBatch, traceFetch } from './tracing.js';

describe('traceBatch without an OpenTelemetry SDK', () => {
  it('runs the batch untraced and passes its result and its error through', async () => {
    const info = { group: 'g', topic: 't', partition: 0, fromOffset: 0n, nextOffset: 1n, epoch: 1n, records: [] };
    let seen: unknown;
    const result = await traceBatch(info, async (trace) => {
      seen = trace;
      return trace.handle([], async () => 42);
    });
    expect(result).toBe(42);
    expect(seen).toBe(NO_TRACE);
    await expect(traceBatch(info, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });
});

describe('traceFetch without an OpenTelemetry SDK', () => {
  it('starts nothing: no trace object for the fetcher to call', () => {
    expect(traceFetch('g', [{ topic: 't', partition: 0, offset: 0n }])).toBeUndefined();
  });
});
