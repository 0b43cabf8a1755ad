import { ConfigError, OncelyError } from '@oncely/core';
import { INVALID_AUTHORIZATION, INVALID_CATALOG_NAME, INVALID_PASSWORD } from '@oncely/postgres-offsets';

/** Connection settings shared by every command: flags first, then the environment. */
export interface ConnectionFlags {
  brokers?: string;
  databaseUrl?: string;
  schema?: string;
}

export interface Connections {
  brokers: string[];
  databaseUrl: string;
  schema: string;
}

/**
 * Resolves brokers, database and schema from the flags, else KAFKA_BROKERS / DATABASE_URL /
 * ONCELY_SCHEMA (the CLI has already filled the flags from ONCELY_BROKERS / ONCELY_DATABASE_URL).
 */
export function resolveConnections(flags: ConnectionFlags, need: { kafka: boolean } = { kafka: true }): Connections {
  const brokers = (flags.brokers ?? process.env.KAFKA_BROKERS ?? '')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  if (need.kafka && brokers.length === 0) {
    throw new ConfigError(
      'No Kafka brokers: pass --brokers host:port[,host:port] or set ONCELY_BROKERS or KAFKA_BROKERS (in a checkout of oncely, `pnpm services up` prints them)',
    );
  }
  const databaseUrl = flags.databaseUrl ?? process.env.DATABASE_URL;
  if (!databaseUrl) {
    throw new ConfigError(
      'No database: pass --database-url postgres://… or set ONCELY_DATABASE_URL or DATABASE_URL (in a checkout of oncely, `pnpm services up` prints it)',
    );
  }
  return { brokers, databaseUrl, schema: flags.schema ?? process.env.ONCELY_SCHEMA ?? 'oncely' };
}

/** Exit codes: what a supervisor can tell from the status alone. */
export const ExitCode = {
  /** Stopped cleanly (drained on a signal, or a bounded run finished). */
  OK: 0,
  /** The worker failed at run time (the log says why; nothing partial was committed). */
  FAILED: 1,
  /** Bad usage or configuration: fix the command line or the environment. */
  USAGE: 2,
  /** A bounded run (--until caught-up) ended with partitions stopped (see `oncely status`); the others caught up. */
  STOPPED_PARTITIONS: 3,
  /** A bounded run was stopped by a signal (drained cleanly) before it caught up. */
  INTERRUPTED: 4,
  /** A second signal aborted the drain; in-flight transactions were rolled back. */
  ABORTED: 130,
} as const;

/**
 * Errors that no retry fixes, only a change of the command line or the environment: bad options, a
 * topic that does not exist, credentials Kafka or PostgreSQL refuse, a database that does not exist,
 * a schema newer than this oncely or one not migrated to it. They exit 2.
 */
export function isConfigurationError(e: unknown): boolean {
  if (
    OncelyError.is(e, 'CONFIG_INVALID') ||
    OncelyError.is(e, 'TOPIC_NOT_FOUND') ||
    OncelyError.is(e, 'KAFKA_AUTH_FAILED') ||
    OncelyError.is(e, 'SCHEMA_TOO_NEW') ||
    OncelyError.is(e, 'SCHEMA_TOO_OLD')
  ) {
    return true;
  }
  const sqlState = OncelyError.is(e, 'STORE_FAILED') ? (e.cause as { code?: unknown } | undefined)?.code : undefined;
  return sqlState === INVALID_PASSWORD || sqlState === INVALID_AUTHORIZATION || sqlState === INVALID_CATALOG_NAME;
}
