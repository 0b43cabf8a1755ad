import { OncelyError } from '@oncely/core';
import { Command } from 'commander';
import { registerDlq } from './commands/dlq.js';
import { registerMigrate } from './commands/migrate.js';
import { registerOffsets } from './commands/offsets.js';
import { registerReplay } from './commands/replay.js';
import { registerRun } from './commands/run.js';
import { registerStatus } from './commands/status.js';
import { ExitCode } from './config.js';

/** Builds the `oncely` command; `setCode` receives the exit code of the command that ran. */
export function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command('oncely')
    .description('Exactly-once processing of Kafka records into PostgreSQL')
    .showHelpAfterError()
    .exitOverride();
  // One call per command; each command lives in its own file under commands/.
  registerRun(program, setCode);
  registerMigrate(program, setCode);
  registerStatus(program, setCode);
  registerOffsets(program, setCode);
  registerReplay(program, setCode);
  registerDlq(program, setCode);
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
    if (OncelyError.is(e, 'CONFIG_INVALID')) {
      console.error(`oncely: ${e.message}`);
      return ExitCode.USAGE;
    }
    console.error(`oncely: ${OncelyError.is(e) ? `${e.code}: ` : ''}${err.message ?? String(e)}`);
    return ExitCode.FAILED;
  }
}
