import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  CodecError,
  ConfigError,
  IdleInTransactionError,
  NonRetriableError,
  OncelyError,
  PartitionHeldError,
  RecordFailedError,
  StoreUnavailableError,
  TransactionEndedError,
  WorkerCrashedError,
} from '../errors.js';
import { pgText } from '../text.js';
import { classifyError, type ErrorClass, type StoreErrorClassifier } from './classify.js';

const pgError = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

/** A store that knows SQLSTATE classes the way PostgresStore does (enough of them for these cases). */
const store: StoreErrorClassifier = {
  classifyError(e: unknown): ErrorClass | undefined {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') return undefined;
    if (code === 'ECONNREFUSED' || code === '40001' || code === '55P03') return 'transient';
    if (code.startsWith('22') || code.startsWith('23')) return 'record';
    if (code.startsWith('42')) return 'systemic';
    return undefined;
  },
};

describe('classifyError', () => {
  it('says transient for an unavailable store or broker, a held partition and an abort, from either source', () => {
    for (const e of [
      new StoreUnavailableError('down'),
      new PartitionHeldError('t', 0, 'w', 10),
      new AbortedError(),
      pgError('ECONNREFUSED'),
      pgError('40001'),
      pgError('55P03'),
    ]) {
      expect(classifyError(e, 'handler', store)).toBe('transient');
      expect(classifyError(e, 'oncely', store)).toBe('transient');
    }
  });

  it("says record for a handler's own errors, codec failures and data errors of its SQL", () => {
    expect(classifyError(new Error('account frozen'), 'handler', store)).toBe('record');
    expect(classifyError(new NonRetriableError('never'), 'handler', store)).toBe('record');
    expect(classifyError(new CodecError('bad json'), 'handler', store)).toBe('record');
    expect(classifyError(pgError('23505'), 'handler', store)).toBe('record');
    expect(classifyError(pgError('22P02'), 'handler', store)).toBe('record');
    expect(classifyError(new WorkerCrashedError('crashed'), 'handler', store)).toBe('record');
    // Wrapped as the runtime wraps them: the cause decides, wherever the wrapper is caught.
    expect(classifyError(new RecordFailedError('t', 0, 1n, pgError('23505')), 'oncely', store)).toBe('record');
  });

  it('says systemic for code, schema, permission and configuration errors, even when a handler threw them', () => {
    for (const e of [pgError('42P01'), pgError('42703'), pgError('42501'), pgError('42601')]) {
      expect(classifyError(e, 'handler', store)).toBe('systemic');
      expect(classifyError(new RecordFailedError('t', 0, 1n, e), 'handler', store)).toBe('systemic');
    }
    expect(classifyError(new ConfigError('missing binding'), 'handler', store)).toBe('systemic');
    expect(classifyError(new TransactionEndedError('t/0', 'commit'), 'handler', store)).toBe('systemic');
    expect(classifyError(new OncelyError('SCHEMA_TOO_NEW', 'newer'), 'oncely', store)).toBe('systemic');
    // A transaction the store ended for idling: not an outage, even though its connection died.
    const idle = new IdleInTransactionError('idle too long', 300, { cause: new Error('Connection terminated unexpectedly') });
    expect(classifyError(idle, 'oncely', store)).toBe('systemic');
    expect(classifyError(idle, 'handler', store)).toBe('systemic');
  });

  it("says systemic for what oncely's own statements get that is not transient: no record is to blame", () => {
    expect(classifyError(pgError('22P02'), 'oncely', store)).toBe('systemic');
    expect(classifyError(new Error('something odd'), 'oncely', store)).toBe('systemic');
    expect(classifyError(new ConfigError('range.nextOffset is before range.fetchedFrom'), 'oncely', store)).toBe('systemic');
    // A StoreError wrapping a driver error: the driver error decides, else it is systemic.
    const storeFailed = (cause: unknown) => new OncelyError('STORE_FAILED', 'failed', { cause });
    expect(classifyError(storeFailed(pgError('42P01')), 'oncely', store)).toBe('systemic');
    expect(classifyError(storeFailed(pgError('40001')), 'oncely', store)).toBe('transient');
    expect(classifyError(storeFailed(pgError('XX999')), 'oncely', store)).toBe('systemic');
  });

  it('reads the cause chain for the driver error underneath a wrapper', () => {
    const wrapped = new Error('repository failed', { cause: new Error('query failed', { cause: pgError('42P01') }) });
    expect(classifyError(wrapped, 'handler', store)).toBe('systemic');
    expect(classifyError(new Error('x', { cause: pgError('40001') }), 'handler', store)).toBe('transient');
  });

  it("falls back on a store's isTransientError, and on nothing: a handler's error is the record's", () => {
    const old: StoreErrorClassifier = { isTransientError: (e) => (e as { code?: string }).code === 'X' };
    expect(classifyError(pgError('X'), 'handler', old)).toBe('transient');
    expect(classifyError(pgError('42P01'), 'handler', old)).toBe('record');
    expect(classifyError(pgError('42P01'), 'handler')).toBe('record');
    expect(classifyError(pgError('42P01'), 'oncely')).toBe('systemic');
  });
});

describe('pgText', () => {
  it('replaces lone surrogates and NUL with U+FFFD and keeps well-formed text as it is', () => {
    expect(pgText('a\uD800b\u0000c\uDC00')).toBe('a\uFFFDb\uFFFDc\uFFFD');
    expect(pgText('café 😀')).toBe('café 😀');
    expect(pgText(undefined)).toBeNull();
    expect(pgText(null)).toBeNull();
  });
});
