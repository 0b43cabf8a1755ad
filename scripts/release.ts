/**
 * `pnpm release [patch|minor|major|<version>] [--out <dir>]`: a release, previewed. It computes the
 * next version, shows the changelog section that version would get, and packs every package as
 * it would be published (the version and the @oncely/* ranges set to the new version), then asks
 * `npm publish --dry-run` about each tarball. Nothing is published and no file of the repository
 * changes; the tarballs land in `.oncely/release/<version>/` (or `--out`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
// Dependency order: a registry must see core before the packages that name it.
const ORDER = ['core', 'postgres-offsets', 'cli', 'examples'];

const usage = `usage: pnpm release [patch|minor|major|<x.y.z>] [--out <dir>]
  Previews a release: next version, changelog section, the packed tarballs and what
  npm publish --dry-run says about each. It never publishes. Default bump: patch.`;

class UsageError extends Error {}

interface Pkg {
  dir: string;
  name: string;
  version: string;
}

// What pnpm sets for the script it runs; npm would read it as its own configuration.
const env = Object.fromEntries(
  Object.entries(process.env).filter(
    ([k]) => !/^(npm_(config_user_agent|lifecycle_|package_|execpath|node_execpath|command)|pnpm_)/i.test(k),
  ),
);

function sh(command: string, args: string[], cwd = ROOT): string {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env });
  if (r.error) throw new Error(`${command} could not start: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${r.status}\n${r.stdout}${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

function nextVersion(current: string, bump: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?$/.exec(current);
  if (!m) throw new Error(`the packages' version ${current} is not x.y.z`);
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  switch (bump) {
    case 'major':
      return `${major + 1}.0.0`;
    case 'minor':
      return `${major}.${minor + 1}.0`;
    case 'patch':
      return `${major}.${minor}.${patch + 1}`;
    default:
      if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(bump)) throw new UsageError(`not a bump or a version: ${bump}`);
      return bump;
  }
}

function publishable(): Pkg[] {
  const pkgs: Pkg[] = [];
  for (const dir of readdirSync(join(ROOT, 'packages'))) {
    const file = join(ROOT, 'packages', dir, 'package.json');
    if (!existsSync(file)) continue;
    const p = JSON.parse(readFileSync(file, 'utf8'));
    if (!p.private) pkgs.push({ dir, name: p.name, version: p.version });
  }
  const rank = (d: string) => (ORDER.includes(d) ? ORDER.indexOf(d) : ORDER.length);
  return pkgs.sort((a, b) => rank(a.dir) - rank(b.dir) || a.dir.localeCompare(b.dir));
}

/**
 * The section the version gets: CHANGELOG.md's `## Unreleased` entries when there are some, else
 * the commit subjects since the last `v*` tag (so the preview shows what a changelog must cover).
 */
function changelogSection(version: string, date: string): { text: string; source: string } {
  const file = join(ROOT, 'CHANGELOG.md');
  if (existsSync(file)) {
    const m = /^## \[?Unreleased\]?[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/im.exec(readFileSync(file, 'utf8'));
    if (m?.[1]?.trim()) return { text: `## ${version} - ${date}\n\n${m[1].trim()}\n`, source: 'CHANGELOG.md, ## Unreleased' };
  }
  const tag = spawnSync('git', ['describe', '--tags', '--abbrev=0', '--match', 'v*'], { cwd: ROOT, encoding: 'utf8' });
  const range = tag.status === 0 ? [`${tag.stdout.trim()}..HEAD`] : [];
  const subjects = sh('git', ['log', '--no-merges', '--format=%s', ...range])
    .trim()
    .split('\n')
    .filter(Boolean);
  return {
    text: `## ${version} - ${date}\n\n${subjects.map((s) => `- ${s}`).join('\n')}\n`,
    source: `git log ${range[0] ?? '(no v* tag yet: every commit)'}; CHANGELOG.md has no Unreleased entries`,
  };
}

/** Repacks a pnpm-packed tarball with `version`, @oncely/* ranges pointing at it too. */
function repack(tarball: string, version: string, names: Set<string>, out: string, work: string): string {
  const dir = mkdtempSync(join(work, 'pkg-'));
  sh('tar', ['-xzf', tarball, '-C', dir]);
  const file = join(dir, 'package', 'package.json');
  const pkg = JSON.parse(readFileSync(file, 'utf8'));
  pkg.version = version;
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies']) {
    for (const dep of Object.keys(pkg[field] ?? {})) {
      if (names.has(dep)) pkg[field][dep] = field === 'peerDependencies' ? `^${version}` : version;
    }
  }
  const text = `${JSON.stringify(pkg, null, 2)}\n`;
  if (text.includes('workspace:')) throw new Error(`${pkg.name}: a workspace: range is left in the packed package.json`);
  writeFileSync(file, text);
  const name = sh('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', out], join(dir, 'package')).trim();
  return join(out, name.split('\n').pop()!);
}

function main(argv: string[]): number {
  let bump = 'patch';
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      console.log(usage);
      return 0;
    }
    if (a === '--out') {
      out = argv[++i];
      if (!out) throw new UsageError('--out needs a directory');
    } else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else bump = a;
  }
  const pkgs = publishable();
  const versions = new Set(pkgs.map((p) => p.version));
  if (versions.size !== 1) {
    throw new Error(`the packages are released together but have versions ${[...versions].join(', ')}`);
  }
  const current = pkgs[0]!.version;
  const version = nextVersion(current, bump);
  const date = new Date().toISOString().slice(0, 10);
  const outDir = resolve(out ?? join(ROOT, '.oncely', 'release', version));
  const dirty = sh('git', ['status', '--porcelain']).trim();

  console.log('release preview (dry run: nothing is published, no file of the repository changes)');
  console.log(`  version   ${current} -> ${version}`);
  console.log(`  packages  ${pkgs.map((p) => p.name).join(', ')}`);
  if (dirty) console.log('  warning   the working tree has uncommitted changes; a real release starts from a clean main');
  const { text, source } = changelogSection(version, date);
  console.log(`\nchangelog section (from ${source}):\n\n${text}`);

  sh('pnpm', ['build']); // also prunes the outputs of sources that are gone
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'oncely-release-'));
  try {
    const names = new Set(pkgs.map((p) => p.name));
    console.log(`tarballs in ${outDir}:`);
    for (const p of pkgs) {
      const packed = mkdtempSync(join(work, 'packed-'));
      sh('pnpm', ['pack', '--pack-destination', packed], join(ROOT, 'packages', p.dir));
      const tarball = repack(join(packed, readdirSync(packed)[0]!), version, names, outDir, work);
      const report = sh('npm', ['publish', '--dry-run', '--ignore-scripts', tarball], work);
      const access = /with tag (\S+) and (\S+) access/.exec(report);
      const files = /total files:\s*(\d+)/.exec(report)?.[1];
      const size = /package size:\s*([^\n]+)/.exec(report)?.[1]?.trim();
      if (!report.includes(`+ ${p.name}@${version}`) || access?.[2] !== 'public') {
        throw new Error(`npm publish --dry-run of ${tarball} did not report ${p.name}@${version} with public access:\n${report}`);
      }
      console.log(
        `  ${`${p.name}@${version}`.padEnd(34)} ${`${files} files`.padEnd(10)} ${size?.padEnd(9)} tag ${access[1]}, public`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log(
    `\nTo release for real: put the section above into CHANGELOG.md, set version ${version} in every\n` +
      `package.json, commit, tag v${version}, and publish the tarballs in the order listed.`,
  );
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  console.error(`release: ${e instanceof Error ? e.message : String(e)}`);
  if (e instanceof UsageError) console.error(usage);
  process.exitCode = e instanceof UsageError ? 2 : 1;
}
