import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { pinoLogger } from './logger.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, stream };
}

describe('pinoLogger', () => {
  it('writes one JSON event per call with the message, the fields and the child bindings', () => {
    const { lines, stream } = capture();
    const log = pinoLogger(pino({ level: 'debug', base: null }, stream)).child({ worker: 'w-1', epoch: 7n });
    log.info('batch committed', { offset: 12345678901234567890n, records: 3, error: new Error('boom'), nested: { at: 1n } });
    log.debug('quiet', {});
    log.warn('lease lost', { partition: 2, skipped: undefined });
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'batch committed',
      worker: 'w-1',
      epoch: '7',
      offset: '12345678901234567890',
      records: 3,
      error: 'boom',
      nested: { at: '1' },
    });
    expect(lines[1]).toMatchObject({ level: 20, msg: 'quiet' });
    expect(lines[2]).toMatchObject({ level: 40, msg: 'lease lost', partition: 2 });
    expect('skipped' in lines[2]!).toBe(false);
  });

  it('keeps pino’s level filter', () => {
    const { lines, stream } = capture();
    const log = pinoLogger(pino({ level: 'warn' }, stream));
    log.info('dropped');
    log.error('kept');
    expect(lines.map((l) => l.msg)).toEqual(['kept']);
  });
});
