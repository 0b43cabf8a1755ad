/**
 * Finds processes the tests started and left running. The global setup puts a marker with this
 * run's id into the environment before any test file runs; every process a test starts (workers,
 * the CLI, private brokers and clusters, `pnpm services up`) inherits it, so what still carries
 * it when the run ends was not cleaned up. Linux only (/proc); elsewhere nothing is found.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

export const RUN_MARKER = 'ONCELY_TEST_RUN';

export interface LeftProcess {
  pid: number;
  command: string;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return undefined; // gone meanwhile, or not ours to read
  }
}

/** Processes that carry `RUN_MARKER=<runId>`, except vitest's own (its workers inherit the marker). */
export function processesOfRun(runId: string): LeftProcess[] {
  if (!existsSync('/proc/self/environ')) return [];
  const marker = `${RUN_MARKER}=${runId}`;
  const found: LeftProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const environ = read(`/proc/${pid}/environ`);
    if (!environ?.split('\0').includes(marker)) continue;
    const command = (read(`/proc/${pid}/cmdline`) ?? '').split('\0').join(' ').trim();
    // A zombie (exited, not yet reaped) has an empty command line and runs nothing.
    if (command === '' || isVitest(command)) continue;
    found.push({ pid, command });
  }
  return found;
}

// vitest's pool workers and the esbuild service vite starts in them, while they wind down.
function isVitest(command: string): boolean {
  return /[/\\]vitest[/\\]/.test(command) || /\besbuild\b.* --service=/.test(command);
}

/** SIGKILLs the processes (so the next run starts clean) and says what they were. */
export function killLeft(left: LeftProcess[]): string {
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return left.map((p) => `  pid ${p.pid}: ${p.command.slice(0, 300)}`).join('\n');
}
