export type { Migration } from './load.js';
export { loadMigrations, MIGRATIONS_DIR } from './load.js';
export type { MigrateResult } from './migrate.js';
export { assertMigrated, migrate } from './migrate.js';
