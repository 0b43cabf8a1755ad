/**
 * @oncely/cli — the `oncely` command.
 *
 * ```sh
 * oncely migrate --database-url postgres://localhost/app
 * oncely run ./dist/app.js --worker 1/2        # SIGTERM drains, a second SIGTERM aborts
 * oncely run ./dist/app.js --until caught-up   # bounded run with a progress bar
 * oncely status --group ledger                 # positions, lag, owners, leases
 * oncely offsets reset --group ledger --shift-by -100             # the plan; add --execute to apply
 * oncely offsets checkpoint create before-deploy --group ledger
 * ONCELY_UI_TOKEN=… oncely ui --port 8080                  # the operator console (read-only without the token)
 * oncely replay --from-group ledger --group ledger-v2 --to-datetime 2024-05-01T00:00:00Z
 * ONCELY_BATCH_MAX_RECORDS=500 oncely run ./dist/app.js   # every flag --foo-bar also reads ONCELY_FOO_BAR
 * ```
 *
 * The same commands are available programmatically: `await main(['run', './app.js'])`.
 */

export { migrateCommand, registerMigrate } from './commands/migrate.js';
export type { ResetFlags } from './commands/offsets.js';
export { registerOffsets, resetTarget } from './commands/offsets.js';
export type { ReplayFlags } from './commands/replay.js';
export { registerReplay } from './commands/replay.js';
export type { RunFlags } from './commands/run.js';
export { loadApp, registerRun, runCommand } from './commands/run.js';
export type { StatusFlags } from './commands/status.js';
export { registerStatus, statusCommand } from './commands/status.js';
export type { ConnectionFlags, Connections } from './config.js';
export { ExitCode, isConfigurationError, resolveConnections } from './config.js';
export type { KafkaFlags } from './kafka.js';
export { kafkaSecurity } from './kafka.js';
export { buildProgram, main, VERSION } from './main.js';
export { WORKER_SEMI_SPACE_MB, workerNodeFlags } from './node-flags.js';
export { type ConsoleOptions, consoleHandler } from './ui/console.js';
