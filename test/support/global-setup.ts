import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { up } from '../../scripts/services/index.js';
import { killLeft, processesOfRun, RUN_MARKER } from './leaks.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    databaseUrl: string;
    /** Why `tsc -b` failed, or '' when the packages' dist is current. */
    buildError: string;
  }
}

/** Makes the real broker and database available once per run; test files read them with inject(). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const services = await up();
  // After up(): the shared broker it may start is not the tests' to stop.
  const runId = randomUUID();
  process.env[RUN_MARKER] = runId;
  project.provide('kafkaBrokers', services.kafka.brokers);
  project.provide('databaseUrl', services.postgres.url);
  // Child processes that tests start (workers, the CLI) find the services through the environment.
  process.env.KAFKA_BROKERS = services.kafka.brokers.join(',');
  process.env.DATABASE_URL = services.postgres.url;
  // The packaging and documentation tests read the built packages: build once here (a no-op when
  // current, as `pnpm build` does) rather than in parallel test files. A failure fails only the tests that need dist.
  const root = resolve(import.meta.dirname, '../..');
  let buildError = '';
  for (const args of [['scripts/prune-dist.mjs'], [resolve(root, 'node_modules/typescript/bin/tsc'), '-b']]) {
    const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) buildError ||= `${args.join(' ')} failed:\n${r.stdout}${r.stderr}`;
  }
  project.provide('buildError', buildError);

  // Every process a test started must be gone when the run ends, even after a failure.
  return async () => {
    // A process that was signalled in a test's last hook may take a moment to exit.
    let left = processesOfRun(runId);
    for (let waited = 0; left.length && waited < 10_000; waited += 250) {
      await new Promise((r) => setTimeout(r, 250));
      left = processesOfRun(runId);
    }
    if (left.length) {
      throw new Error(`${left.length} process(es) started by the tests were still running (now killed):\n${killLeft(left)}`);
    }
  };
}
