/**
 * The one rule for the names oncely puts into SQL text: its own schema, and the tables and columns
 * that `insertRows` and `copyRows` write to. Group and topic names are never identifiers: they are
 * bound as values everywhere.
 *
 * A name part is a plain PostgreSQL identifier: a letter or `_`, then letters, digits, `_` or `$`,
 * at most 63 characters (NAMEDATALEN - 1; PostgreSQL would silently truncate a longer one). A table
 * may be qualified once (`schema.table`); a column may not. Every accepted name is double-quoted
 * in the SQL text, so its case is kept as written.
 */
import { ConfigError } from '@oncely/core';

const PART = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/**
 * oncely's own schema: lower-case too, so that `oncely.partitions` typed unquoted in psql names the
 * same schema the store uses.
 */
export const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** What is named: a table (which may be `schema.table`) or a column. */
export type IdentifierKind = 'table' | 'column';

/** The parts of a table or column name, checked; a ConfigError names the caller and the name. */
export function identifierParts(caller: string, kind: IdentifierKind, name: unknown): string[] {
  const parts = typeof name === 'string' ? name.split('.') : [];
  const max = kind === 'table' ? 2 : 1;
  if (parts.length === 0 || parts.length > max || parts.some((p) => !PART.test(p))) {
    throw new ConfigError(
      `${caller}: ${kind} ${JSON.stringify(name)} is not a plain identifier (a letter or _, then letters, digits, _ or $, ` +
        `at most 63 characters${kind === 'table' ? '; "schema.table" allowed' : ''}).`,
    );
  }
  return parts;
}

/** A table or column name, checked and double-quoted for SQL text (`"schema"."table"`). */
export function quoteIdentifier(caller: string, kind: IdentifierKind, name: unknown): string {
  return identifierParts(caller, kind, name)
    .map((p) => `"${p}"`)
    .join('.');
}

/** Validates oncely's schema name once; every SQL text that names the schema uses the result. */
export function validateSchema(schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_PATTERN.test(schema)) {
    throw new ConfigError(
      `schema must match ${SCHEMA_PATTERN} (lower-case letters, digits and _, at most 63 characters); got ${JSON.stringify(schema)}.`,
    );
  }
  return schema;
}
