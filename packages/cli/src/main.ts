import { readFileSync } from 'node:fs';
import { OncelyError, wasLogged } from '@oncely/core';
import { Command } from 'commander';
import { registerDlq } from './commands/dlq.js';
import { registerExplain } from './commands/explain.js';
import { registerMigrate } from './commands/migrate.js';
import { registerOffsets } from './commands/offsets.js';
import { registerReplay } from './commands/replay.js';
import { registerRun } from './commands/run.js';
import { registerStatus } from './commands/status.js';
import { registerUi } from './commands/ui.js';
import { ExitCode, isConfigurationError } from './config.js';
import { applyEnvironment, explainSource } from './flags.js';

/** The version of @oncely/cli (its package.json sits one level above src/ and dist/). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** `--x=value` in commander's own messages (an unknown option, a bad value) could be a secret typed by mistake. */
const hideValues = (text: string) => text.replace(/'(--[a-z0-9-]+)=[^']*'/gi, "'$1=…'");

/** The name of a command as it is typed: `oncely offsets reset`. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * commander's message for bad usage (an unknown flag or command, a bad choice, a missing
 * argument) as one line: the error, the closest valid name when commander has one ("did you
 * mean"), and where the whole help is, instead of the help itself under the error.
 */
export function usageLine(text: string, command: string): string {
  const [error = '', ...more] = hideValues(text)
    .trim()
    .replace(/^error: /, '')
    .split('\n');
  const hint = more
    .map((l) => l.trim().replace(/^\(Did you mean/, '(did you mean'))
    .filter(Boolean)
    .join(' ');
  return `oncely: ${error.replace(/\.$/, '')}${hint ? ` ${hint}` : ''}; see ${command} --help\n`;
}

/** The `oncely` command, and the subcommand that ran (known once its options are parsed). */
function build(setCode: (code: number) => void): { program: Command; ran: () => Command | undefined } {
  let ran: Command | undefined;
  const program = new Command('oncely')
    .description('Exactly-once processing of Kafka records into PostgreSQL')
    .version(VERSION, '-V, --version', 'print the version')
    .showSuggestionAfterError()
    .exitOverride()
    .hook('preAction', (_program, command) => {
      ran = command;
      applyEnvironment(command);
    });
  // One call per command; each command lives in its own file under commands/.
  registerRun(program, setCode);
  registerMigrate(program, setCode);
  registerStatus(program, setCode);
  registerOffsets(program, setCode);
  registerReplay(program, setCode);
  registerDlq(program, setCode);
  registerExplain(program, setCode);
  registerUi(program, setCode);
  // Each command says its own name in the line (commander reports an error on the command it parses).
  const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];
  for (const command of everyCommand(program)) {
    command.configureOutput({ outputError: (text, write) => write(usageLine(text, commandPath(command))) });
  }
  return { program, ran: () => ran };
}

/**
 * The store words an outage for a worker, which waits it out ("the operation will be retried"); a
 * command that ends with it retries nothing, so its message says what to do instead.
 */
function oneShot(e: unknown, message: string): string {
  if (!OncelyError.is(e, 'STORE_UNAVAILABLE')) return message;
  return message.replace('; the operation will be retried. ', '; nothing was done: run the command again once it answers. ');
}

/** Builds the `oncely` command; `setCode` receives the exit code of the command that ran. */
export function buildProgram(setCode: (code: number) => void): Command {
  return build(setCode).program;
}

/**
 * Runs the CLI with these arguments (without node and script); resolves to the exit code:
 * 0 done (or stopped cleanly), 1 failed, 2 bad usage or configuration, 3 a bounded run ended with partitions
 * stopped, 4 a bounded run interrupted by a signal before it caught up, 130 aborted by a second signal.
 */
export async function main(argv: string[]): Promise<number> {
  let code: number = ExitCode.OK;
  const { program, ran } = build((c) => {
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
    // Said in full already, with what to do (`oncely run`: the worker's error line): not twice.
    if (wasLogged(e)) return isConfigurationError(e) ? ExitCode.USAGE : ExitCode.FAILED;
    if (OncelyError.is(e, 'CONFIG_INVALID')) {
      console.error(`oncely: ${explainSource(e.message, ran())}`);
      return ExitCode.USAGE;
    }
    console.error(`oncely: ${OncelyError.is(e) ? `${e.code}: ` : ''}${oneShot(e, err.message ?? String(e))}`);
    return isConfigurationError(e) ? ExitCode.USAGE : ExitCode.FAILED;
  }
}
