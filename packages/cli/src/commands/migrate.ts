import { PostgresStore } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import { type ConnectionFlags, ExitCode, resolveConnections } from '../config.js';
import { connectionOptions } from '../options.js';
import { printJson } from '../output.js';

/** `oncely migrate`: applies the schema's migrations (safe to run from several places at once). */
export async function migrateCommand(flags: ConnectionFlags & { json?: boolean }): Promise<number> {
  const conn = resolveConnections(flags, { kafka: false });
  const store = new PostgresStore({ connectionString: conn.databaseUrl, schema: conn.schema });
  try {
    const result = await store.migrate();
    if (flags.json) printJson({ schema: conn.schema, ...result });
    else console.log(`schema ${conn.schema} is up to date`);
    return ExitCode.OK;
  } finally {
    await store.close();
  }
}

/** Registers `oncely migrate`. */
export function registerMigrate(program: Command, setCode: (code: number) => void): void {
  connectionOptions(
    program.command('migrate').description("Create or upgrade oncely's tables").option('--json', 'JSON for scripts'),
    false,
  ).action(async (flags) => setCode(await migrateCommand(flags)));
}
