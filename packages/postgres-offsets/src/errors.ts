/**
 * Errors of @oncely/postgres-offsets, and the one place where driver errors become oncely errors.
 * Connection loss, lock timeouts, deadlocks and serialization failures are retriable
 * (StoreUnavailableError); anything else is a StoreError that names the operation.
 */
import { type ErrorClass, OncelyError, type OncelyErrorOptions, StoreUnavailableError, toError } from '@oncely/core';

// SQLSTATEs we act on (https://www.postgresql.org/docs/current/errcodes-appendix.html).
export const UNIQUE_VIOLATION = '23505';
export const LOCK_NOT_AVAILABLE = '55P03';
export const SERIALIZATION_FAILURE = '40001';
export const DEADLOCK_DETECTED = '40P01';
export const QUERY_CANCELED = '57014';
export const ADMIN_SHUTDOWN = '57P01';
export const CRASH_SHUTDOWN = '57P02';
export const CANNOT_CONNECT_NOW = '57P03';
export const TOO_MANY_CONNECTIONS = '53300';
/** The session was ended for staying idle inside a transaction (idle_in_transaction_session_timeout). */
export const IDLE_IN_TRANSACTION_TIMEOUT = '25P03';
export const UNDEFINED_TABLE = '42P01';
export const INVALID_SCHEMA_NAME = '3F000';
/** Class 28: the server rejected the credentials (28P01 wrong password, 28000 no pg_hba entry / no such role). */
export const INVALID_PASSWORD = '28P01';
export const INVALID_AUTHORIZATION = '28000';
/** The database named in the URL does not exist on the server (3D000 invalid_catalog_name). */
export const INVALID_CATALOG_NAME = '3D000';
/** Class 08: connection exceptions (08000, 08003, 08006, 08001, 08004, …). */
export const CONNECTION_EXCEPTION_CLASS = '08';

/** Node socket errors that mean "the database is not reachable right now". */
const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

const RETRIABLE_SQLSTATES = new Set([ADMIN_SHUTDOWN, CRASH_SHUTDOWN, CANNOT_CONNECT_NOW, TOO_MANY_CONNECTIONS]);

/** A statement failed in a way retrying will not fix (a bug, a missing migration, a constraint). */
export class StoreError extends OncelyError {
  override readonly name = 'StoreError';
  constructor(message: string, options: OncelyErrorOptions = {}) {
    super('STORE_FAILED', message, { ...options, retriable: false });
  }
}

/** The database holds migrations this code does not know: an older worker against a newer schema. */
export class SchemaTooNewError extends OncelyError {
  override readonly name = 'SchemaTooNewError';
  constructor(
    readonly schema: string,
    readonly databaseVersion: number,
    readonly codeVersion: number,
  ) {
    super(
      'SCHEMA_TOO_NEW',
      `Schema "${schema}" is at migration ${databaseVersion}, but this version of @oncely/postgres-offsets only knows ` +
        `migrations up to ${codeVersion}. Upgrade @oncely/postgres-offsets on this worker (never downgrade a migrated schema).`,
      { retriable: false },
    );
  }
}

/**
 * The database lacks migrations this code's statements need: a newer oncely (an upgraded CLI, the
 * admin) against a schema that has not been migrated yet. `missing` names the first one.
 */
export class SchemaTooOldError extends OncelyError {
  override readonly name = 'SchemaTooOldError';
  constructor(
    readonly schema: string,
    readonly databaseVersion: number,
    readonly codeVersion: number,
    readonly missing: string,
  ) {
    const needs =
      databaseVersion + 1 === codeVersion
        ? `migration ${codeVersion} (${missing})`
        : `migrations ${databaseVersion + 1} (${missing}) to ${codeVersion}`;
    super(
      'SCHEMA_TOO_OLD',
      databaseVersion === 0
        ? // Nothing migrated it: more often a mistyped schema or database than an old one.
          `Schema "${schema}" has no oncely tables: no oncely has migrated it (this version needs migrations 1 to ${codeVersion}). ` +
            'If the positions are elsewhere, check --schema (ONCELY_SCHEMA) and the database in DATABASE_URL; ' +
            'to start here, run `oncely migrate` (or store.migrate()), then try again.'
        : `Schema "${schema}" is at migration ${databaseVersion}, but this version of @oncely/postgres-offsets needs ${needs}. ` +
            'Run `oncely migrate` (or store.migrate()) against it, then try again.',
      { retriable: false },
    );
  }
}

/**
 * Replaces every password of a connection URL in a text, in each place node-postgres reads one
 * from: the userinfo (`postgres://u:secret@h` → `postgres://u:***@h`, up to the last `@` of the
 * authority, since a password may hold an unescaped `@`) and the `password` or `sslpassword`
 * query parameter (`?password=secret` → `?password=***`), on any scheme (postgres, postgresql,
 * socket). PGPASSWORD and password files never enter a URL or a message.
 */
export function redact(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^/?#\s]*@/gi, '$1***@')
    .replace(/([?&](?:ssl)?password=)[^&#\s'"]*/gi, '$1***');
}

function sqlState(e: Error): string | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether `e` or an error of its cause chain is PostgreSQL ending the session for idling in a transaction (25P03). */
export function isIdleInTransactionTimeout(e: unknown): boolean {
  let current = e;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (sqlState(current) === IDLE_IN_TRANSACTION_TIMEOUT) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Whether an error means the database could not be reached or dropped the connection. */
export function isConnectionError(e: Error): boolean {
  const code = sqlState(e);
  if (code !== undefined && (NETWORK_ERRNOS.has(code) || RETRIABLE_SQLSTATES.has(code))) return true;
  if (code?.length === 5 && code.startsWith(CONNECTION_EXCEPTION_CLASS)) return true;
  if (e.name === 'KnexTimeoutError') return true; // no pool connection within acquireConnectionTimeout
  return /Connection terminated|connection is closed|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(
    e.message,
  );
}

/**
 * SQLSTATE classes that are the record's when a handler's own statement gets them: data exceptions
 * (22: a value out of range, invalid text for a type), integrity constraint violations (23), a
 * check option (44), and a handler's own RAISE (P0: a PL/pgSQL function it calls said no).
 */
const RECORD_CLASSES = new Set(['22', '23', '44', 'P0']);
/**
 * SQLSTATE classes no retry fixes: syntax or access rule violations (42: undefined table or
 * column, insufficient privilege, syntax error), an invalid schema (3F), credentials (28), a
 * feature not supported (0A), invalid catalog (3D), configuration file errors (F0), system and
 * internal errors (58, XX).
 */
const SYSTEMIC_CLASSES = new Set(['42', '3F', '28', '0A', '3D', 'F0', '58', 'XX']);
/** Resource classes that pass (53: out of memory, disk full, too many connections). */
const TRANSIENT_CLASSES = new Set(['53']);

/**
 * What kind of failure a driver error is (see classifyError in @oncely/core): transient for
 * connection loss and the SQLSTATEs a retry can pass (57P01-57P03, 53xxx, 40001, 40P01, 55P03),
 * record for data errors (22, 23, 44, P0), systemic for code, schema and permissions (42, 3F, 28,
 * 0A, …). Undefined when it cannot tell. A cancelled statement (57014) is left undefined: oncely's
 * own shutdown cancels are seen as the stop they are before any class is asked for, oncely's own
 * statements map it to StoreUnavailableError, and a handler's statement_timeout is the record's.
 */
export function classifyPgError(e: unknown): ErrorClass | undefined {
  if (OncelyError.is(e, 'STORE_UNAVAILABLE')) return 'transient';
  if (OncelyError.is(e, 'SCHEMA_TOO_NEW') || OncelyError.is(e, 'SCHEMA_TOO_OLD') || OncelyError.is(e, 'IDLE_IN_TRANSACTION')) {
    return 'systemic';
  }
  if (!(e instanceof Error)) return undefined;
  if (isConnectionError(e)) return 'transient';
  const code = sqlState(e);
  if (code === undefined || code.length !== 5) return undefined;
  if (code === LOCK_NOT_AVAILABLE || code === DEADLOCK_DETECTED || code === SERIALIZATION_FAILURE) return 'transient';
  const cls = code.slice(0, 2);
  if (TRANSIENT_CLASSES.has(cls)) return 'transient';
  if (RECORD_CLASSES.has(cls)) return 'record';
  if (SYSTEMIC_CLASSES.has(cls)) return 'systemic';
  return undefined;
}

/** What an operator does about a systemic SQLSTATE, for the message that stops a partition. */
export function pgRemedy(e: unknown): string | undefined {
  let current = e;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = sqlState(current);
    if (code === UNDEFINED_TABLE || code === '42703' || code === INVALID_SCHEMA_NAME)
      return "a table, column or schema does not exist: run the migration that creates it (for oncely's own tables `oncely migrate`), then start the worker again.";
    if (code === '42501')
      return 'the database user lacks a privilege: grant it (GRANT … TO the user in DATABASE_URL), then start the worker again.';
    if (code === '42601' || code === '42883' || code === '42804')
      return 'a statement is wrong (syntax, an unknown function or a type mismatch): fix the code that sent it and deploy.';
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * knex puts the statement in front of the driver's message (`<sql> - relation "x" does not
 * exist`). oncely's own statements run to dozens of lines, which buried the one line that says
 * what is wrong; `action` already names the operation, so a multi-line statement is left out.
 */
function withoutStatement(message: string): string {
  const cut = message.lastIndexOf(' - ');
  return cut > 0 && message.slice(0, cut).includes('\n') ? message.slice(cut + 3) : message;
}

/**
 * Turns anything a store statement threw into an OncelyError (OncelyErrors pass through).
 * `action` names the operation (`claim orders/3`), `target` the redacted database.
 */
export function mapStoreError(thrown: unknown, action: string, target: string, lockTimeoutMs: number): OncelyError {
  if (OncelyError.is(thrown)) return thrown;
  const e = toError(thrown);
  const code = sqlState(e);
  const detail = redact(withoutStatement(e.message));
  if (isConnectionError(e)) {
    return new StoreUnavailableError(
      `${action}: PostgreSQL at ${target} is unavailable (${code ?? e.name}: ${detail}); the operation will be retried. ` +
        'Check that the server is running and reachable (DATABASE_URL).',
      { cause: e },
    );
  }
  if (code === LOCK_NOT_AVAILABLE) {
    return new StoreUnavailableError(
      `${action}: a lock was not granted within lockTimeoutMs (${lockTimeoutMs} ms); another transaction holds it. ` +
        'The operation will be retried; raise lockTimeoutMs if this persists.',
      { cause: e },
    );
  }
  if (code === DEADLOCK_DETECTED || code === SERIALIZATION_FAILURE || code === QUERY_CANCELED) {
    return new StoreUnavailableError(`${action}: transaction aborted by PostgreSQL (${code}: ${detail}); retrying may succeed.`, {
      cause: e,
    });
  }
  if (code === INVALID_PASSWORD || code === INVALID_AUTHORIZATION) {
    return new StoreError(
      `${action}: PostgreSQL at ${target} rejected the connection (${code}: ${detail}). ` +
        "Check the user and password in DATABASE_URL (or --database-url) and the server's pg_hba.conf; retrying will not help.",
      { cause: e },
    );
  }
  if (code === INVALID_CATALOG_NAME) {
    // The server quotes the name in its message (in every lc_messages); without it, a placeholder.
    const name = /"([^"]+)"/.exec(detail)?.[1] ?? '<name>';
    return new StoreError(
      `${action}: PostgreSQL at ${target} has no such database (${code}: ${detail}). ` +
        `Create it (\`createdb ${name}\`, or \`create database "${name}"\` in psql) or fix the database name in DATABASE_URL ` +
        '(or --database-url); retrying will not help.',
      { cause: e },
    );
  }
  if (code === UNDEFINED_TABLE || code === INVALID_SCHEMA_NAME) {
    return new StoreError(`${action}: ${detail}. Has the schema been migrated? Run store.migrate() or \`oncely migrate\`.`, {
      cause: e,
    });
  }
  return new StoreError(`${action} failed${code ? ` (${code})` : ''}: ${detail}`, { cause: e });
}
