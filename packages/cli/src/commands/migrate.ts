import { PostgresStore } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import { type ConnectionFlags, ExitCode, resolveConnections } from '../config.js';
import { flag, inFlagTerms } from '../flags.js';
import { connectionOptions, JSON_FLAG, STORE_FLAG_NAMES } from '../options.js';
import { printJson } from '../output.js';

/** `oncely migrate`: applies the schema's migrations (safe to run from several places at once). */
export async function migrateCommand(flags: ConnectionFlags & { json?: boolean }): Promise<number> {
  const conn = resolveConnections(flags, { kafka: false });
  const store = inFlagTerms(
    STORE_FLAG_NAMES,
    () => new PostgresStore({ connectionString: conn.databaseUrl, schema: conn.schema, poolMax: 2 }),
  );
  try {
    const result = await store.migrate();
    if (flags.json) printJson({ schema: conn.schema, ...result });
    else if (result.applied.length === 0) console.log(`schema ${conn.schema} is up to date (version ${result.version})`);
    else {
      for (const name of result.applied) console.log(`applied ${name}`);
      console.log(`schema ${conn.schema} migrated to version ${result.version} (${result.applied.length} migration(s) applied)`);
    }
    return ExitCode.OK;
  } finally {
    await store.close();
  }
}

/** Registers `oncely migrate`. */
export function registerMigrate(program: Command, setCode: (code: number) => void): void {
  connectionOptions(flag(program.command('migrate').description("Create or upgrade oncely's tables"), JSON_FLAG), false).action(
    async (flags) => setCode(await migrateCommand(flags)),
  );
}
