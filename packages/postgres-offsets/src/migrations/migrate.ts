import type { Knex } from 'knex';
import { INVALID_SCHEMA_NAME, SchemaTooNewError, SchemaTooOldError, UNDEFINED_TABLE } from '../errors.js';
import { transactionKeepingError } from '../store/transaction-errors.js';
import { loadMigrations } from './load.js';

/** What migrate() did. */
export interface MigrateResult {
  /** File names applied by this call, in order (empty when the schema was already current). */
  applied: string[];
  /** The schema's migration number afterwards. */
  version: number;
}

/**
 * Two-key advisory lock: a constant namespace for oncely's migrator plus the schema's hash, so
 * migrations of different schemas (parallel test files) do not wait for each other.
 */
const LOCK_NAMESPACE = 'oncely.migrate';

/**
 * Applies pending migrations, each in its own transaction. Every transaction first takes the
 * advisory lock (waiting for a concurrent migrator to finish its step), then re-reads what is
 * applied, so any number of workers may call this at once and each migration runs exactly once.
 * DDL runs under lock_timeout: an ALTER that cannot get its table lock fails (retriably) instead of
 * queueing every worker's statements behind it.
 */
export async function migrate(knex: Knex, schema: string, quotedSchema: string, lockTimeoutMs: number): Promise<MigrateResult> {
  const migrations = await loadMigrations();
  const codeVersion = migrations.length;
  const applied: string[] = [];
  for (;;) {
    const step = await transactionKeepingError(knex, async (trx) => {
      // Not under lock_timeout: waiting for another migrator is expected and bounded by its step.
      await trx.raw('select pg_advisory_xact_lock(hashtext(:namespace), hashtext(:schema))', {
        namespace: LOCK_NAMESPACE,
        schema,
      });
      await trx.raw(`set local lock_timeout = ${lockTimeoutMs}`); // an integer from compiled options
      await trx.raw(`create schema if not exists ${quotedSchema}`);
      await trx.raw(
        `create table if not exists ${quotedSchema}.migrations (
           id int primary key,
           name text not null,
           applied_at timestamptz not null default now()
         )`,
      );
      const { rows } = await trx.raw<{ rows: Array<{ version: number | null }> }>(
        `select max(id) as version from ${quotedSchema}.migrations`,
      );
      const version = rows[0]?.version ?? 0;
      if (version > codeVersion) throw new SchemaTooNewError(schema, version, codeVersion);
      const next = migrations[version];
      if (next === undefined) return { done: true as const, version };
      await trx.raw(next.sql.replaceAll(':ONCELY_SCHEMA', quotedSchema));
      await trx.raw(`insert into ${quotedSchema}.migrations (id, name) values (:id, :name)`, { id: next.id, name: next.name });
      return { done: false as const, version: next.id, name: next.name };
    });
    if (step.done) return { applied, version: step.version };
    applied.push(step.name);
  }
}

/**
 * Throws SchemaTooOldError when the schema lacks a migration of this code (none applied counts as
 * 0), for readers that do not migrate (`oncely status`, the admin commands): their statements
 * assume every column, so an older schema would fail on the first one it lacks, with that
 * statement's text instead of what to do. A newer schema passes: migrations only add.
 */
export async function assertMigrated(knex: Knex, schema: string, quotedSchema: string): Promise<void> {
  const migrations = await loadMigrations();
  let version: number;
  try {
    const { rows } = await knex.raw<{ rows: Array<{ version: number | null }> }>(
      `select max(id) as version from ${quotedSchema}.migrations`,
    );
    version = rows[0]?.version ?? 0;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== UNDEFINED_TABLE && code !== INVALID_SCHEMA_NAME) throw e;
    version = 0;
  }
  const missing = migrations[version];
  if (missing !== undefined) throw new SchemaTooOldError(schema, version, migrations.length, missing.name);
}
