/** Runs the real `oncely` binary and TypeScript entry points from source (tsx) as child processes. */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { stopOnCleanup } from './cleanup.js';
import { brokers, databaseUrl } from './fixtures.js';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts a TypeScript entry under tsx in the repository root (the base tsconfig enables decorators). */
export function spawnTs(file: string, env: Record<string, string | undefined> = {}, args: string[] = []): ChildProcess {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', file, ...args], {
    cwd: ROOT,
    env: { ...process.env, TSX_TSCONFIG_PATH: resolve(ROOT, 'tsconfig.base.json'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Killed when the test ends if it still runs (a failed assertion skips the test's own kill).
  return stopOnCleanup(child);
}

/** Collects a child's output until it closes. */
export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((done) => child.on('close', (code, signal) => done({ code, signal, stdout, stderr })));
}

/** Starts `oncely <args>` with the test services in its environment. */
export function startOncely(
  args: string[],
  env: Record<string, string | undefined> = {},
): { child: ChildProcess; result: Promise<CliResult> } {
  const child = spawnTs(
    'packages/cli/src/bin.ts',
    // logfmt, the format the tests read; test/cli/logging.test.ts covers json and auto.
    {
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      ONCELY_LOG_LEVEL: 'warn',
      ONCELY_LOG_FORMAT: 'logfmt',
      ...env,
    },
    args,
  );
  return { child, result: collect(child) };
}

/** Runs `oncely <args>` to completion. */
export function oncely(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return startOncely(args, env).result;
}

/**
 * Runs `oncely <args>`; a process still running after `deadlineMs` is killed and reported as
 * `hung` (a guard against a process that never exits, not a measure of how fast it was).
 */
export async function oncelyBounded(
  args: string[],
  env: Record<string, string | undefined> = {},
  deadlineMs = 15_000,
): Promise<CliResult & { hung: boolean }> {
  const { child, result } = startOncely(args, env);
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, deadlineMs);
  try {
    return { ...(await result), hung };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What a command's stderr says, as a reader sees it: a JSON log line (`--log-format json`) as its
 * level, message, code and error text unescaped; any other line as it is.
 */
export function stderrText(stderr: string): string {
  return stderr
    .split('\n')
    .map((line) => {
      if (!line.startsWith('{')) return line;
      const event = JSON.parse(line) as { level?: string; msg?: string; code?: string; error?: string };
      return [event.level, event.msg, event.code, event.error].filter((v) => v !== undefined).join(' ');
    })
    .join('\n');
}
