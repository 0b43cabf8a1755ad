import { ConfigError, OncelyError } from '@oncely/core';
import { Command, Option } from 'commander';
import { migrateCommand } from './commands/migrate.js';
import { runCommand } from './commands/run.js';
import { ExitCode } from './config.js';

const connectionOptions = (cmd: Command, kafka = true) => {
  if (kafka) cmd.option('--brokers <list>', 'Kafka bootstrap brokers, host:port[,…] (default: $KAFKA_BROKERS)');
  return cmd
    .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL)')
    .option('--schema <name>', "oncely's schema (default: $ONCELY_SCHEMA or oncely)");
};

/** Builds the `oncely` command; `code` receives the exit code of the command that ran. */
export function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command('oncely')
    .description('Exactly-once processing of Kafka records into PostgreSQL')
    .showHelpAfterError()
    .exitOverride();

  connectionOptions(
    program
      .command('run')
      .description('Run a worker for an app module (default export or `app` from defineApp) until SIGTERM/SIGINT')
      .argument('<app-module>', 'path to the app module (.js, or .ts under tsx)')
      .option('--partitions <selector>', 'static assignment, e.g. "payments:0-3,orders:*" (default: all)')
      .option('--worker <i/n>', 'deterministic split: this is worker i of n')
      .option('--worker-id <id>', 'identity in claims and the offset log (default: host-pid-random)')
      .option('--initial-offset <where>', 'start of partitions never seen: earliest | latest | ISO date-time', 'earliest')
      .addOption(
        new Option('--offset-out-of-range <policy>', 'when retention deleted the stored offset')
          .choices(['fail', 'earliest', 'latest'])
          .default('fail'),
      )
      .option('--batch-max-records <n>', 'records per transaction (default 500)')
      .option('--drain-timeout <ms>', 'how long a stop waits for in-flight transactions (default 30000)')
      .addOption(new Option('--log-level <level>').choices(['debug', 'info', 'warn', 'error']).default('info'))
      .option('--no-migrate', 'do not apply migrations at start'),
  ).action(async (modulePath: string, flags) => setCode(await runCommand(modulePath, flags)));

  connectionOptions(program.command('migrate').description("Create or upgrade oncely's tables"), false).action(async (flags) =>
    setCode(await migrateCommand(flags)),
  );
  return program;
}

/** Runs the CLI with these arguments (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code: number = ExitCode.OK;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? ExitCode.OK : ExitCode.USAGE;
    }
    if (e instanceof ConfigError) {
      console.error(`oncely: ${e.message}`);
      return ExitCode.USAGE;
    }
    console.error(`oncely: ${e instanceof OncelyError ? `${e.code}: ` : ''}${err.message ?? String(e)}`);
    return ExitCode.FAILED;
  }
}
