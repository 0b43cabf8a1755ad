/**
 * The benchmark measures what users run: the packages' dist/ under plain node, not the sources
 * under a TypeScript loader. Before a run this builds the packages (what `pnpm build` does:
 * prune stale outputs, `tsc -b`, incremental, so a second time is quick) and the bench's process
 * entry points (bench/tsconfig.build.json → bench/dist/), and gives the path of a compiled entry
 * point to fork.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

export class BuildError extends Error {}

function step(what: string, args: string[]): void {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0)
    throw new BuildError(
      `bench: ${what} failed (exit ${r.status ?? r.signal}); the benchmark runs the built packages: fix the build (pnpm build) and run it again`,
    );
}

/** Builds the packages and the bench's entry points; throws {@link BuildError} when a build fails. */
export function buildForBench(log: (line: string) => void = console.log): void {
  const t0 = performance.now();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  step('pruning stale build outputs', [join(root, 'scripts', 'prune-dist.mjs')]);
  step('building the packages (tsc -b)', [tsc, '-b', join(root, 'tsconfig.json')]);
  step('building the bench (tsc -p bench/tsconfig.build.json)', [tsc, '-p', join(here, 'tsconfig.build.json')]);
  log(`built the packages and the bench in ${((performance.now() - t0) / 1000).toFixed(1)} s (scenarios run from dist/)`);
}

/** The compiled form of a bench entry point, e.g. `scenario.ts` → bench/dist/scenario.js. */
export function compiled(entry: string): string {
  return join(here, 'dist', entry.replace(/\.ts$/, '.js'));
}
