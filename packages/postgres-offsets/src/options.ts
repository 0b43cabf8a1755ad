import { ConfigError, type Logger } from '@oncely/core';
import type { Knex } from 'knex';
import { redact } from './errors.js';
import { validateSchema } from './identifiers.js';

/** Where the store connects: a connection string (the store owns the pool) or a knex instance (the caller does). */
export type PostgresStoreConnection =
  | {
      /** A `postgres://` URL. The store creates a knex pool for it and closes it in close(). */
      connectionString: string;
      knex?: never;
    }
  | {
      /** An existing knex instance with the `pg` client. The store uses it and never destroys it. */
      knex: Knex;
      connectionString?: never;
    };

/** Options of {@link PostgresStore}. */
export type PostgresStoreOptions = PostgresStoreConnection & {
  /** Schema holding oncely's tables; must match `^[a-z_][a-z0-9_]{0,62}$`. Default `'oncely'`. */
  schema?: string;
  /** Maximum connections of the pool the store creates (ignored with `knex`). Default 10. */
  poolMax?: number;
  /**
   * Longest wait for a row or table lock in any store transaction, set with `SET LOCAL lock_timeout`
   * (also bounds the handler's own lock waits). A timeout raises a retriable StoreUnavailableError.
   * Default 5000.
   */
  lockTimeoutMs?: number;
  /**
   * Longest time a batch's transaction may sit idle between two statements, set with `SET LOCAL
   * idle_in_transaction_session_timeout`: PostgreSQL ends the session of a process that stopped in
   * the middle of a batch (frozen by SIGSTOP, a VM pause, a stuck event loop), so its row locks
   * (the partition row after the compare-and-set, the handler's rows) cannot block the other
   * workers' takeovers and writes for longer. The batch rolls back; nothing of it is committed. A
   * handler that does slow non-database work inside its transaction must stay below it. 0 turns it
   * off. Default 30000.
   */
  idleInTransactionTimeoutMs?: number;
  /** `application_name` of the store's connections, shown in pg_stat_activity (ignored with `knex`). Default `'oncely'`. */
  applicationName?: string;
  /**
   * Where the pool's own warnings go (a pooled connection lost in an outage), once per change with
   * repeats counted (ignored with `knex`: that instance logs as it was set up). Pass the worker's
   * logger so they are in its format. Default: `consoleLogger()`.
   */
  logger?: Logger;
  /**
   * BENCHMARK ONLY: breaks exactly-once. Commits move the position with a plain update keyed by
   * group/topic/partition instead of the epoch/position/owner compare-and-set, and the batch start
   * skips its fencing check, so a worker that lost its partition still commits. It exists so that
   * `pnpm bench` can price the fence (scenario "oncely batch, fence off"); it is deliberately left
   * out of the README's options. Default false.
   * @internal
   */
  unsafeUnfencedCommitsForBenchmarks?: boolean;
};

/** Options after validation, with defaults applied. Frozen; holds no secret. */
export interface CompiledStoreOptions {
  readonly schema: string;
  /** The schema as a quoted identifier, ready for SQL text (safe: validated against the pattern). */
  readonly quotedSchema: string;
  readonly poolMax: number;
  readonly lockTimeoutMs: number;
  readonly idleInTransactionTimeoutMs: number;
  readonly applicationName: string;
  /** The database for messages: the connection string with its password redacted, or `'(knex instance)'`. */
  readonly target: string;
  /** Whether the store created the pool (and so closes it). */
  readonly ownsPool: boolean;
  /** Benchmark only: commits are not fenced (see PostgresStoreOptions). */
  readonly unsafeUnfencedCommitsForBenchmarks: boolean;
}

function positiveInt(name: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(`${name} must be an integer between 1 and ${max}; got ${JSON.stringify(value)}.`);
  }
  return value;
}

/** What node-postgres reads as a connection string: a postgres(ql):// or socket: URL, or a socket directory. */
const CONNECTION_STRING = /^(?:postgres(?:ql)?:\/\/|socket:|\/)/i;

/** Validates options once into a frozen object (the connection string itself is not kept there). */
export function compileStoreOptions(options: PostgresStoreOptions): CompiledStoreOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError('PostgresStore needs an options object.');
  const hasUrl = options.connectionString !== undefined;
  const hasKnex = options.knex !== undefined;
  if (hasUrl === hasKnex) {
    throw new ConfigError('PostgresStore needs exactly one of connectionString (e.g. process.env.DATABASE_URL) or knex.');
  }
  if (hasUrl && (typeof options.connectionString !== 'string' || options.connectionString.length === 0)) {
    throw new ConfigError('connectionString must be a non-empty postgres:// URL; is DATABASE_URL set?');
  }
  if (hasUrl && !CONNECTION_STRING.test(options.connectionString as string)) {
    // node-postgres resolves anything else against a dummy base URL and then looks up a host named
    // "base" until a start timeout gives up; the value itself may hold a password, so it is not shown.
    throw new ConfigError(
      'connectionString is not a PostgreSQL URL: expected postgres://user:password@host:5432/database ' +
        '(or postgresql://…, or a socket directory such as /var/run/postgresql); is DATABASE_URL set to something else?',
    );
  }
  if (hasKnex && typeof options.knex !== 'function') {
    throw new ConfigError('knex must be a knex instance (the function returned by knex({ client: "pg", … })).');
  }
  const applicationName = options.applicationName ?? 'oncely';
  if (typeof applicationName !== 'string' || applicationName.length > 63) {
    throw new ConfigError(`applicationName must be a string of at most 63 characters; got ${JSON.stringify(applicationName)}.`);
  }
  const schema = validateSchema(options.schema ?? 'oncely');
  const unfenced = options.unsafeUnfencedCommitsForBenchmarks ?? false;
  if (typeof unfenced !== 'boolean') {
    throw new ConfigError(`unsafeUnfencedCommitsForBenchmarks must be a boolean; got ${JSON.stringify(unfenced)}.`);
  }
  return Object.freeze({
    schema,
    quotedSchema: `"${schema}"`,
    poolMax: positiveInt('poolMax', options.poolMax, 10, 1000),
    lockTimeoutMs: positiveInt('lockTimeoutMs', options.lockTimeoutMs, 5000, 2_147_483_647),
    idleInTransactionTimeoutMs:
      options.idleInTransactionTimeoutMs === 0
        ? 0
        : positiveInt('idleInTransactionTimeoutMs', options.idleInTransactionTimeoutMs, 30_000, 2_147_483_647),
    applicationName,
    target: hasUrl ? redact(options.connectionString as string) : '(knex instance)',
    ownsPool: hasUrl,
    unsafeUnfencedCommitsForBenchmarks: unfenced,
  });
}
