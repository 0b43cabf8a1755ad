/**
 * @oncely/cli — the `oncely` command.
 *
 * ```sh
 * oncely migrate --database-url postgres://localhost/app
 * oncely run ./dist/app.js --worker 1/2        # SIGTERM drains, a second SIGTERM aborts
 * ```
 *
 * The same commands are available programmatically: `await main(['run', './app.js'])`.
 */

export { migrateCommand } from './commands/migrate.js';
export type { RunFlags } from './commands/run.js';
export { loadApp, runCommand } from './commands/run.js';
export type { ConnectionFlags, Connections } from './config.js';
export { ExitCode, resolveConnections } from './config.js';
export { buildProgram, main } from './main.js';
