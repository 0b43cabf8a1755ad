import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  FencedError,
  isRetriable,
  markLogged,
  OncelyError,
  RecordFailedError,
  StoreUnavailableError,
  toError,
  wasLogged,
} from './errors.js';

describe('OncelyError.is', () => {
  it('recognises oncely errors by brand and code', () => {
    const fenced = new FencedError('t', 0, 1n);
    expect(OncelyError.is(fenced)).toBe(true);
    expect(OncelyError.is(fenced, 'FENCED')).toBe(true);
    expect(OncelyError.is(fenced, 'CONFIG_INVALID')).toBe(false);
    expect(OncelyError.is(new ConfigError('x'), 'CONFIG_INVALID')).toBe(true);
    expect(OncelyError.is(new Error('plain'))).toBe(false);
    expect(OncelyError.is(null)).toBe(false);
    expect(OncelyError.is('FENCED')).toBe(false);
  });

  it('recognises an error made by another copy of the package (instanceof cannot)', () => {
    // What a second copy of @oncely/core builds: its own class, the same registered symbol.
    const e = Object.assign(new Error('db down'), {
      code: 'STORE_UNAVAILABLE',
      retriable: true,
      [Symbol.for('oncely.error')]: true,
    });
    expect(e instanceof OncelyError).toBe(false);
    expect(OncelyError.is(e, 'STORE_UNAVAILABLE')).toBe(true);
    expect(isRetriable(e)).toBe(true);
  });

  it('RecordFailedError keeps the code and retriability of its cause', () => {
    const failed = new RecordFailedError('t', 0, 5n, new StoreUnavailableError('down'));
    expect(failed.code).toBe('HANDLER_FAILED');
    expect(failed.retriable).toBe(true);
    expect(failed.message).toBe('Record t/0/5 failed: down');
  });
});

describe('toError', () => {
  it('keeps the message and name of an Error from another realm (not instanceof Error)', async () => {
    const { runInNewContext } = await import('node:vm');
    const foreign = runInNewContext('new TypeError("from a vm")') as unknown;
    expect(foreign instanceof Error).toBe(false);
    const e = toError(foreign);
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.message]).toEqual(['TypeError', 'from a vm']);
    expect(toError({ no: 'message' }).message).toBe('Non-error thrown: {"no":"message"}');
  });
});

describe('markLogged', () => {
  it('marks an error as said in full, seen by any copy of the package, without changing what it prints', () => {
    const e = new ConfigError('bad');
    expect(wasLogged(e)).toBe(false);
    expect(markLogged(e)).toBe(e);
    expect(wasLogged(e)).toBe(true);
    // The mark is a registered symbol: another copy of @oncely/core reads the same one.
    expect((e as unknown as Record<symbol, unknown>)[Symbol.for('oncely.logged')]).toBe(true);
    expect(Object.keys(e)).not.toContain('oncely.logged');
    expect(JSON.stringify(e)).toBe(JSON.stringify(new ConfigError('bad')));
    expect(wasLogged(new Error('other'))).toBe(false);
    expect(wasLogged('a string')).toBe(false);
    expect(wasLogged(Object.freeze(markLogged(Object.freeze(new Error('frozen')))))).toBe(false);
  });
});
