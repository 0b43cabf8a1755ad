/**
 * Cleanup that runs even when a test fails: `afterAll` and `afterEach` called inside a test or a
 * `beforeAll` are silently never run by vitest, so fixtures that start processes register here.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, onTestFinished } from 'vitest';

const atFileEnd: Array<() => unknown> = [];

// Registered when a test file first imports this module (during collection): runs after the
// file's own afterAll hooks (hooks run as a stack), so workers stop before their services do.
afterAll(async () => {
  const errors: unknown[] = [];
  for (const fn of atFileEnd.splice(0).reverse()) {
    try {
      await fn();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length) throw new AggregateError(errors, 'cleanup failed');
});

/** Runs `fn` when the current test ends (inside a test), else when the test file ends. */
export function cleanup(fn: () => unknown): void {
  try {
    onTestFinished(async () => {
      await fn();
    });
  } catch {
    atFileEnd.push(fn);
  }
}

/** SIGKILLs the child at cleanup when it still runs, and waits until it has exited. */
export function stopOnCleanup(child: ChildProcess): ChildProcess {
  cleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await exited;
  });
  return child;
}
