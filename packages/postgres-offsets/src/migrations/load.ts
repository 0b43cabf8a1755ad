import { readdir, readFile } from 'node:fs/promises';
import { StoreError } from '../errors.js';

/** One numbered migration file. */
export interface Migration {
  /** The number in the file name (0001 → 1). */
  id: number;
  /** The file name, recorded in the migrations table. */
  name: string;
  /** The SQL, with `:ONCELY_SCHEMA` still unreplaced. */
  sql: string;
}

/**
 * The package's `migrations/` folder. This file sits at `src/migrations/load.ts` and compiles to
 * `dist/migrations/load.js`, both two levels below the package root, so one relative URL serves
 * the sources (tests, tsx) and the build (the published package ships `migrations/`).
 */
export const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url);

const FILE_PATTERN = /^(\d{4})_[a-z0-9_]+\.sql$/;

let cached: Promise<readonly Migration[]> | undefined;

/** Reads the migration files once per process, in order; they must be numbered 1, 2, 3… without gaps. */
export function loadMigrations(): Promise<readonly Migration[]> {
  cached ??= readMigrations().catch((e) => {
    cached = undefined;
    throw e;
  });
  return cached;
}

async function readMigrations(): Promise<readonly Migration[]> {
  const names = (await readdir(MIGRATIONS_DIR)).filter((n) => FILE_PATTERN.test(n)).sort();
  const migrations: Migration[] = [];
  for (const [index, name] of names.entries()) {
    const id = Number(FILE_PATTERN.exec(name)?.[1]);
    if (id !== index + 1) {
      throw new StoreError(`Migration files in ${MIGRATIONS_DIR.pathname} are not numbered 1..n without gaps (${name}).`);
    }
    const sql = await readFile(new URL(name, MIGRATIONS_DIR), 'utf8');
    // knex.raw reads '?' as a binding placeholder, even in comments.
    if (sql.includes('?')) throw new StoreError(`Migration ${name} contains '?', which knex would treat as a binding.`);
    migrations.push({ id, name, sql });
  }
  if (migrations.length === 0) throw new StoreError(`No migration files found in ${MIGRATIONS_DIR.pathname}.`);
  return Object.freeze(migrations);
}
