/**
 * `pnpm release` previews a release and changes nothing: the next version, its changelog section,
 * and tarballs that carry the new version (in their @oncely/* ranges too) and that npm would
 * publish with public access.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { collect } from './support/cli.js';

const ROOT = resolve(import.meta.dirname, '..');
const out = mkdtempSync(join(tmpdir(), 'oncely-release-test-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(out, { recursive: true, force: true });
});

const packageJsons = () =>
  readdirSync(join(ROOT, 'packages')).map((p) => readFileSync(join(ROOT, 'packages', p, 'package.json'), 'utf8'));

it('pnpm release minor previews the next minor version without publishing or changing the repository', async () => {
  const before = packageJsons();
  const current: string = JSON.parse(before[0]!).version;
  const [major, minor] = current.split('.').map(Number);
  const next = `${major}.${minor! + 1}.0`;

  const child = spawn('pnpm', ['release', 'minor', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const r = await collect(child);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain(`version   ${current} -> ${next}`);
  expect(r.stdout).toMatch(new RegExp(`^## ${next.replaceAll('.', '\\.')} - \\d{4}-\\d{2}-\\d{2}$`, 'm'));
  for (const name of ['core', 'postgres-offsets', 'cli', 'examples']) {
    expect(r.stdout).toMatch(new RegExp(`@oncely/${name}@${next.replaceAll('.', '\\.')} .* public`));
  }
  expect(packageJsons()).toEqual(before);

  const tarballs = readdirSync(out).sort();
  expect(tarballs).toEqual(['cli', 'core', 'examples', 'postgres-offsets'].map((n) => `oncely-${n}-${next}.tgz`));
  const tar = await collect(
    spawn('tar', ['-xzOf', join(out, `oncely-postgres-offsets-${next}.tgz`), 'package/package.json'], { cwd: out }),
  );
  const pkg = JSON.parse(tar.stdout);
  expect(pkg.version).toBe(next);
  expect(pkg.peerDependencies['@oncely/core']).toBe(`^${next}`);
  expect(tar.stdout).not.toContain('workspace:');
}, 180_000);
