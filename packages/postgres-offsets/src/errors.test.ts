import { IdleInTransactionError, OncelyError, StoreUnavailableError } from '@oncely/core';
import { describe, expect, it } from 'vitest';
import {
  ADMIN_SHUTDOWN,
  classifyPgError,
  isIdleInTransactionTimeout,
  LOCK_NOT_AVAILABLE,
  mapStoreError,
  pgRemedy,
  redact,
  SchemaTooOldError,
  StoreError,
  UNIQUE_VIOLATION,
} from './errors.js';

// Driver errors are plain Errors with a `code`; these are built the way pg builds them.
function pgError(code: string, message = 'boom'): Error {
  return Object.assign(new Error(message), { code });
}

describe('mapStoreError', () => {
  it.each([ADMIN_SHUTDOWN, '57P02', '57P03', '08006', '08001', 'ECONNREFUSED', 'ECONNRESET'])(
    'maps %s to a retriable StoreUnavailableError with the cause',
    (code) => {
      const cause = pgError(code);
      const e = mapStoreError(cause, 'claim t/0', 'postgres://u:***@h/db', 5000);
      expect(e).toBeInstanceOf(StoreUnavailableError);
      expect(e.retriable).toBe(true);
      expect(e.cause).toBe(cause);
    },
  );

  it('maps rejected credentials to a non-retriable error that names the redacted target and the fix', () => {
    const e = mapStoreError(
      pgError('28P01', 'password authentication failed for user "u"'),
      'migrate',
      'postgres://u:***@h/db',
      1,
    );
    expect(e).toMatchObject({ code: 'STORE_FAILED', retriable: false });
    expect(e.message).toContain('postgres://u:***@h/db rejected the connection');
    expect(e.message).toContain('Check the user and password in DATABASE_URL');
  });

  it('maps a database that does not exist to a non-retriable error that says how to create it', () => {
    const e = mapStoreError(
      pgError('3D000', 'database "ledger" does not exist'),
      'migrate schema oncely',
      'postgres://u:***@h/ledger',
      1,
    );
    expect(e).toMatchObject({ code: 'STORE_FAILED', retriable: false });
    expect(e.message).toContain(
      'PostgreSQL at postgres://u:***@h/ledger has no such database (3D000: database "ledger" does not exist)',
    );
    expect(e.message).toContain('Create it (`createdb ledger`, or `create database "ledger"` in psql)');
    expect(e.message).toContain('fix the database name in DATABASE_URL');
  });

  it('says of a schema nothing migrated that the schema may be the wrong one, and how to create it', () => {
    const never = new SchemaTooOldError('oncley', 0, 9, '0001_initial.sql');
    expect(never).toMatchObject({ code: 'SCHEMA_TOO_OLD', retriable: false, databaseVersion: 0 });
    expect(never.message).toBe(
      'Schema "oncley" has no oncely tables: no oncely has migrated it (this version needs migrations 1 to 9). ' +
        'If the positions are elsewhere, check --schema (ONCELY_SCHEMA) and the database in DATABASE_URL; ' +
        'to start here, run `oncely migrate` (or store.migrate()), then try again.',
    );
    expect(new SchemaTooOldError('oncely', 8, 9, '0009_worker_gone_grace.sql').message).toMatch(
      /^Schema "oncely" is at migration 8, but this version of @oncely\/postgres-offsets needs migration 9 \(0009_worker_gone_grace\.sql\)\./,
    );
  });

  it("leaves out the multi-line statement knex puts in front of the driver's message, keeping a one-line one", () => {
    const statement = 'with settings as (select 1),\nbeat as (\n  insert into "oncely".workers …\n)\nselect * from beat';
    const e = mapStoreError(
      pgError('42P01', `${statement} - relation "oncely.workers" does not exist`),
      'heartbeat of worker w',
      'x',
      1,
    );
    expect(e.message).toBe(
      'heartbeat of worker w: relation "oncely.workers" does not exist. Has the schema been migrated? Run store.migrate() or `oncely migrate`.',
    );
    const short = mapStoreError(pgError(UNIQUE_VIOLATION, 'insert into t values (1) - duplicate key'), 'claim t/0', 'x', 1);
    expect(short.message).toBe('claim t/0 failed (23505): insert into t values (1) - duplicate key');
  });

  it('maps a lock timeout to a retriable error that names lockTimeoutMs', () => {
    const e = mapStoreError(pgError(LOCK_NOT_AVAILABLE), 'runBatch t/0', 'x', 250);
    expect(e).toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
    expect(e.message).toContain('lockTimeoutMs (250 ms)');
  });

  it('maps other SQL errors to a non-retriable StoreError and passes oncely errors through', () => {
    const e = mapStoreError(pgError(UNIQUE_VIOLATION, 'duplicate key'), 'claim t/0', 'x', 1);
    expect(e).toBeInstanceOf(StoreError);
    expect(e).toMatchObject({ code: 'STORE_FAILED', retriable: false });
    expect(e.message).toBe('claim t/0 failed (23505): duplicate key');
    const own = new OncelyError('FENCED', 'fenced');
    expect(mapStoreError(own, 'a', 'x', 1)).toBe(own);
    expect(mapStoreError('text', 'a', 'x', 1)).toBeInstanceOf(StoreError);
  });

  it('tells the operator to migrate when the tables are missing', () => {
    expect(mapStoreError(pgError('42P01', 'relation "oncely.partitions" does not exist'), 'claim', 'x', 1).message).toMatch(
      /migrate\(\)/,
    );
  });
});

describe('redact', () => {
  it('hides passwords in connection URLs and leaves the rest', () => {
    expect(redact('connect to postgres://app:p4ss@db:5432/x failed')).toBe('connect to postgres://app:***@db:5432/x failed');
    expect(redact('postgresql://app@db/x')).toBe('postgresql://app@db/x');
    expect(redact('no url here')).toBe('no url here');
  });

  it('hides the password in every URL form the driver reads one from', () => {
    const cases: Array<[string, string]> = [
      ['postgres://app:p@ss@db/x', 'postgres://app:***@db/x'], // an unescaped @ in the password
      ['postgres://app:p4ss@/x', 'postgres://app:***@/x'], // no host (socket from the environment)
      ['postgres://app@db/x?password=p4ss', 'postgres://app@db/x?password=***'],
      [
        'postgresql://db/x?sslmode=disable&password=p4ss&application_name=a',
        'postgresql://db/x?sslmode=disable&password=***&application_name=a',
      ],
      ['postgres://db/x?PASSWORD=p4ss#frag', 'postgres://db/x?PASSWORD=***#frag'],
      ['postgres://db/x?sslpassword=k3y&sslkey=/k.pem', 'postgres://db/x?sslpassword=***&sslkey=/k.pem'],
      ['socket://app:p4ss@/var/run/postgresql?db=x', 'socket://app:***@/var/run/postgresql?db=x'],
      ['socket:/var/run/postgresql?db=x&password=p4ss', 'socket:/var/run/postgresql?db=x&password=***'],
      ['at "postgres://u:a@b@h:5432/x?password=c" failed', 'at "postgres://u:***@h:5432/x?password=***" failed'],
    ];
    for (const [text, expected] of cases) expect(redact(text), text).toBe(expected);
    for (const [text] of cases) expect(redact(text)).not.toMatch(/p4ss|p@ss|k3y|a@b|=c"/);
  });
});

describe('classifyPgError', () => {
  it.each([
    ['ECONNREFUSED', 'transient'],
    ['ECONNRESET', 'transient'],
    ['57P01', 'transient'],
    ['57P02', 'transient'],
    ['57P03', 'transient'],
    ['53300', 'transient'],
    ['40001', 'transient'],
    ['40P01', 'transient'],
    ['55P03', 'transient'],
    ['08006', 'transient'],
    ['22P02', 'record'],
    ['22003', 'record'],
    ['23505', 'record'],
    ['23503', 'record'],
    ['P0001', 'record'],
    ['42P01', 'systemic'],
    ['42703', 'systemic'],
    ['42501', 'systemic'],
    ['42601', 'systemic'],
    ['3F000', 'systemic'],
    ['28P01', 'systemic'],
    ['XX000', 'systemic'],
  ])('%s is %s', (code, cls) => {
    expect(classifyPgError(pgError(code))).toBe(cls);
  });

  it('knows connection loss by message, oncely errors by code, and leaves what it cannot tell undefined', () => {
    expect(classifyPgError(new Error('Connection terminated unexpectedly'))).toBe('transient');
    expect(classifyPgError(new Error('timeout exceeded when trying to connect'))).toBe('transient');
    expect(classifyPgError(new StoreUnavailableError('down'))).toBe('transient');
    expect(classifyPgError(new Error('plain'))).toBeUndefined();
    expect(classifyPgError(pgError('57014'))).toBeUndefined();
    expect(classifyPgError('a string')).toBeUndefined();
  });

  it('knows a session ended for idling in a transaction (25P03), in the cause chain too, and calls it systemic', () => {
    expect(isIdleInTransactionTimeout(pgError('25P03'))).toBe(true);
    expect(isIdleInTransactionTimeout(new Error('wrapped', { cause: pgError('25P03') }))).toBe(true);
    expect(isIdleInTransactionTimeout(new Error('Connection terminated unexpectedly'))).toBe(false);
    expect(isIdleInTransactionTimeout(undefined)).toBe(false);
    expect(classifyPgError(new IdleInTransactionError('idle too long', 300))).toBe('systemic');
  });

  it('names what to do about systemic SQLSTATEs, through wrappers', () => {
    expect(pgRemedy(pgError('42P01'))).toMatch(/run the migration that creates it/);
    expect(pgRemedy(new Error('wrapped', { cause: pgError('42501') }))).toMatch(/grant it/);
    expect(pgRemedy(pgError('42601'))).toMatch(/fix the code that sent it/);
    expect(pgRemedy(pgError('23505'))).toBeUndefined();
  });
});
