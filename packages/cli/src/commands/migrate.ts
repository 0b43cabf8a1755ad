import { PostgresStore } from '@oncely/postgres-offsets';
import { type ConnectionFlags, ExitCode, resolveConnections } from '../config.js';

/** `oncely migrate`: applies the schema's migrations (safe to run from several places at once). */
export async function migrateCommand(flags: ConnectionFlags): Promise<number> {
  const conn = resolveConnections(flags, { kafka: false });
  const store = new PostgresStore({ connectionString: conn.databaseUrl, schema: conn.schema });
  try {
    await store.migrate();
    console.log(`schema ${conn.schema} is up to date`);
    return ExitCode.OK;
  } finally {
    await store.close();
  }
}
