/**
 * The V8 heap flags `oncely run` starts a worker with. No imports beyond node's: bin.ts reads this
 * before it loads anything else, to start the worker's process again with the flags when needed.
 *
 * Why: V8 sizes the young generation from the heap limit, which Node takes from the machine's
 * memory (or the container's limit). With a heap limit of 2 GiB or more (8 GiB of memory and up)
 * each of its two semi-spaces grows to 32–64 MiB, and a worker draining a backlog allocates fast
 * enough to fill them: on a 24 GiB machine the young generation alone took 128 MiB of a worker's
 * ~400 MiB peak RSS. Semi-spaces of {@link WORKER_SEMI_SPACE_MB} MiB cut that, at the price of
 * more frequent scavenges (docs/performance.md has the figures).
 */
import { getHeapStatistics } from 'node:v8';

/** The size of each of the young generation's two semi-spaces that `oncely run` gives a worker, in MiB. */
export const WORKER_SEMI_SPACE_MB = 16;

/** Below this heap limit V8's own semi-spaces are this small already (a small machine or container). */
const MIN_HEAP_LIMIT_MB = 2048;

/** A flag by which the user sized V8's heap: then V8's sizing is theirs, and nothing is added. */
const HEAP_SIZE_FLAG = /(^|\s)--(max|min)[-_](semi[-_]space|old[-_]space|heap)[-_]size(\s|=|$)/;

/**
 * The node flags to start a worker process with: `--max-semi-space-size=16` when the heap limit is
 * 2 GiB or more and neither the flags of this process nor NODE_OPTIONS size the heap themselves;
 * else none (`NODE_OPTIONS=--max-semi-space-size=0` keeps V8's own sizing).
 */
export function workerNodeFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
  heapLimitMb: number = getHeapStatistics().heap_size_limit / 1024 / 1024,
): string[] {
  if (execArgv.some((a) => HEAP_SIZE_FLAG.test(a)) || HEAP_SIZE_FLAG.test(nodeOptions ?? '')) return [];
  if (heapLimitMb < MIN_HEAP_LIMIT_MB) return [];
  return [`--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];
}

/** Set in the environment of the process started again, so that it never starts itself once more. */
const RESTARTED = 'ONCELY_NODE_FLAGS_APPLIED';

/**
 * Replaces this process (same pid, same stdio, same environment, signals and exit code straight to
 * the caller) by node with {@link workerNodeFlags} before the rest of the script's arguments, when
 * there are flags to add and the platform can (`process.execve`: Node 22.15 / 23.11 and later, not
 * on Windows). Returns when nothing was done: the worker then runs with V8's own sizing.
 */
export function restartWithWorkerFlags(): void {
  if (process.env[RESTARTED] !== undefined) return;
  const flags = workerNodeFlags();
  const script = process.argv[1];
  if (flags.length === 0 || typeof process.execve !== 'function' || process.platform === 'win32' || !script) return;
  const env: NodeJS.ProcessEnv = { ...process.env, [RESTARTED]: flags.join(' ') };
  try {
    process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, script, ...process.argv.slice(2)], env);
  } catch {
    // The exec failed (the node binary moved, a sandbox refuses it): run as we are.
  }
}
