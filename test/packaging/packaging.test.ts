/**
 * The packages as a user gets them. Every workspace package is packed with `pnpm pack`; a new app
 * in a scratch directory outside the workspace installs the tarballs with npm, together with its
 * own inversify 8, knex, pg and reflect-metadata from the registry (the versions a user gets
 * today). The app is type-checked with `strict` under moduleResolution bundler, nodenext and node,
 * then run against the real broker and database twice: from code (createWorker) and with the
 * packaged `oncely run`, each time with a class handler resolved from the app's inversify 8
 * container and a function handler; the rows they wrote are checked one by one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect } from '../support/cli.js';
import { checkedBlocks, documentationFiles, extractBlocks, typeCheckBlocks } from '../support/doc-blocks.js';
import {
  brokers,
  createTopic,
  databaseUrl,
  freshSchema,
  kafkaClient,
  pgPool,
  randomName,
  requireBuild,
} from '../support/fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');
const PACKAGES = ['core', 'postgres-offsets', 'cli', 'examples'];
const TSC = resolve(ROOT, 'node_modules/typescript/bin/tsc');

const children = new Set<ChildProcess>();
let scratch = '';

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** The environment without what pnpm sets for its own scripts (npm would read it as its config). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_(config_user_agent|lifecycle_|package_|execpath|node_execpath|command)|pnpm_|PNPM_)/i.test(k)) continue;
    env[k] = v;
  }
  // The node that runs the tests also runs `#!/usr/bin/env node` scripts such as the oncely bin.
  env.PATH = `${dirname(process.execPath)}${delimiter}${env.PATH ?? ''}`;
  return { ...env, ...extra };
}

/** Runs a command to completion; a non-zero exit fails with its output. */
async function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(command, args, { cwd: options.cwd, env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const result = await collect(child);
  children.delete(child);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${result.code ?? result.signal}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result;
}

const tar = (args: string[], cwd: string) => run('tar', args, { cwd }).then((r) => r.stdout);

/** A tsconfig of the app: strict, decorators on, library declarations checked too. */
function tsconfig(module: string, moduleResolution: string, files: string[] | undefined, emit = false) {
  return {
    compilerOptions: {
      strict: true,
      target: 'ES2022',
      lib: ['ES2023'],
      module,
      moduleResolution,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      skipLibCheck: false,
      types: ['node'],
      ...(emit ? { outDir: 'dist', rootDir: 'src' } : { noEmit: true }),
    },
    ...(files ? { files } : { include: ['src'] }),
  };
}

describe('the packed packages in a new app outside the workspace', () => {
  let tarballs: Record<string, string>;
  const entries: Record<string, string[]> = {};
  let app: string;

  beforeAll(async () => {
    requireBuild(); // the tarballs must hold what the sources say now
    scratch = mkdtempSync(join(tmpdir(), 'oncely-packaging-'));
    const packed = join(scratch, 'tarballs');
    mkdirSync(packed);
    for (const name of PACKAGES) {
      await run('pnpm', ['pack', '--pack-destination', packed], { cwd: join(ROOT, 'packages', name) });
    }
    tarballs = {};
    for (const file of readdirSync(packed)) {
      const name = PACKAGES.find((p) => file.startsWith(`oncely-${p}-`) && /^\d/.test(file.slice(`oncely-${p}-`.length)));
      if (name) tarballs[name] = join(packed, file);
    }
    expect(Object.keys(tarballs).sort()).toEqual([...PACKAGES].sort());
    for (const name of PACKAGES) {
      entries[name] = (await tar(['-tzf', tarballs[name]!], scratch)).split('\n').filter(Boolean);
    }

    app = join(scratch, 'app');
    cpSync(join(import.meta.dirname, 'app'), app, { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'oncely-user-app', private: true, type: 'module' }));
    const nodeMajor = process.versions.node.split('.')[0];
    await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...PACKAGES.map((p) => tarballs[p]!),
        'inversify@8',
        'knex',
        'pg',
        'reflect-metadata',
        `@types/node@${nodeMajor}`,
      ],
      { cwd: app },
    );
  }, 300_000);

  it('ships dist, types, LICENSE and README, and no tests', () => {
    for (const name of PACKAGES) {
      const files = entries[name]!;
      expect(files, name).toContain('package/LICENSE');
      expect(files, name).toContain('package/README.md');
      expect(files, name).toContain('package/dist/index.d.ts');
      expect(files, name).toContain('package/dist/index.js');
      expect(
        files.filter((f) => /\.test\.|tsbuildinfo/.test(f)),
        name,
      ).toEqual([]);
      if (name === 'postgres-offsets') expect(files).toContain('package/migrations/0001_initial.sql');
      // No output of a source that moved or was deleted (pnpm build prunes them).
      const sources = new Set(files.filter((f) => f.startsWith('package/src/')).map((f) => f.slice(12).replace(/\.ts$/, '')));
      expect(
        files.filter((f) => /^package\/dist\/.*\.js$/.test(f) && !sources.has(f.slice(13).replace(/\.js$/, ''))),
        `${name}: stale outputs`,
      ).toEqual([]);
    }
  });

  it('has registry metadata and no workspace: range left in the packed package.json', async () => {
    for (const name of PACKAGES) {
      const text = await tar(['-xzOf', tarballs[name]!, 'package/package.json'], scratch);
      expect(text, name).not.toContain('workspace:');
      const pkg = JSON.parse(text);
      expect(pkg.publishConfig, name).toEqual({ access: 'public' });
      expect(pkg.license, name).toBe('Apache-2.0');
      expect(pkg.engines?.node, name).toBe('>=22');
      expect(pkg.repository?.url, name).toMatch(/^git\+https:/);
      expect(pkg.homepage && pkg.bugs?.url && pkg.keywords?.length, name).toBeTruthy();
      expect(pkg.types, name).toBe('./dist/index.d.ts');
      expect(pkg.main, name).toBe('./dist/index.js');
      // Every entry point is in the tarball, and each subpath also resolves for moduleResolution
      // node, which reads typesVersions instead of exports.
      for (const [subpath, target] of Object.entries<Record<string, string> | string>(pkg.exports)) {
        const files = typeof target === 'string' ? [target] : [target.types!, target.default!];
        for (const f of files) expect(entries[name], `${name} exports ${subpath}`).toContain(`package/${f.slice(2)}`);
        if (subpath === '.' || typeof target === 'string') continue;
        expect(pkg.typesVersions?.['*']?.[subpath.slice(2)], `${name}: typesVersions for ${subpath}`).toEqual([target.types]);
      }
      if (pkg.bin) expect(entries[name]).toContain(`package/${String(Object.values(pkg.bin)[0]).replace(/^\.\//, '')}`);
      // What user code also imports must be the user's copy, never a private one.
      for (const dep of ['inversify', 'knex', 'pg', 'reflect-metadata', '@oncely/core', '@oncely/postgres-offsets']) {
        expect(pkg.dependencies?.[dep], `${name}: ${dep} must be a peer dependency`).toBeUndefined();
      }
    }
  });

  it('npm publish --dry-run reports public access for every tarball', async () => {
    for (const name of PACKAGES) {
      const { stderr, stdout } = await run('npm', ['publish', '--dry-run', tarballs[name]!], { cwd: scratch });
      expect(stdout, name).toContain(`+ @oncely/${name}@`);
      expect(stderr, name).toMatch(/Publishing to \S+ with tag \S+ and public access \(dry-run\)/);
    }
  }, 120_000);

  it('installs one copy of core and inversify 8, the app', () => {
    const modules = join(app, 'node_modules');
    expect(JSON.parse(readFileSync(join(modules, 'inversify/package.json'), 'utf8')).version).toMatch(/^8\./);
    for (const name of ['postgres-offsets', 'cli']) {
      expect(existsSync(join(modules, '@oncely', name, 'node_modules/@oncely/core')), name).toBe(false);
    }
    expect(existsSync(join(modules, '@oncely/core/node_modules/inversify'))).toBe(false);
  });

  it('type-checks with strict under moduleResolution bundler, nodenext and node', async () => {
    const configs = {
      bundler: tsconfig('ESNext', 'Bundler', undefined),
      nodenext: tsconfig('NodeNext', 'NodeNext', undefined),
      // inversify 8 publishes its types only through `exports`, which this resolution ignores, so
      // here the app is its inversify-free half; every oncely declaration it reaches is checked.
      node: tsconfig('ESNext', 'Node', ['src/clicks.ts', 'src/start.ts', 'src/unit.ts']),
    };
    for (const [name, config] of Object.entries(configs)) {
      writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify(config, null, 2));
      await run(process.execPath, [TSC, '-p', `tsconfig.${name}.json`], { cwd: app });
    }
  }, 120_000);

  it("compiles the documentation's code against the tarballs and inversify 8", () => {
    const blocks = checkedBlocks(extractBlocks(ROOT, documentationFiles(ROOT)));
    for (const resolution of ['NodeNext', 'Bundler'] as const) {
      expect(typeCheckBlocks(blocks, join(app, 'docs'), app, resolution), resolution).toEqual([]);
    }
  }, 120_000);

  /** Two fresh topics with 120 payments and 80 clicks, a fresh table, and what a run must have applied. */
  async function appRun() {
    const payments = await createTopic(3, { prefix: 'payments' });
    const clicks = await createTopic(2, { prefix: 'clicks' });
    const appSchema = freshSchema('app');
    const pool = pgPool();
    await pool.query(`create schema ${appSchema}`);
    await pool.query(
      `create table ${appSchema}.applied (source text not null, topic text not null, "offset" bigint not null, item text not null, grp text not null)`,
    );

    const producer = kafkaClient().producer();
    await producer.connect();
    try {
      await producer.send({
        topic: payments,
        messages: Array.from({ length: 120 }, (_, i) => ({
          key: `acct-${i % 7}`,
          value: JSON.stringify({ id: `p${i}`, account: `acct-${i % 7}`, cents: i }),
        })),
      });
      await producer.send({
        topic: clicks,
        messages: Array.from({ length: 80 }, (_, i) => ({ key: `u${i % 5}`, value: JSON.stringify({ id: `c${i}`, page: '/' }) })),
      });
    } finally {
      await producer.disconnect();
    }

    const env = (group: string) => ({
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      ONCELY_SCHEMA: freshSchema('oncely'),
      ONCELY_LOG_LEVEL: 'warn',
      APP_SCHEMA: appSchema,
      APP_GROUP: group,
      PAYMENTS_TOPIC: payments,
      CLICKS_TOPIC: clicks,
    });
    /** Each group applied every record exactly once, payments through the class, clicks through the function. */
    const expectApplied = async (groups: string[]) => {
      const { rows } = await pool.query<{ row: string; n: string }>(
        `select concat_ws(' ', grp, source, topic, item) as row, count(*) as n from ${appSchema}.applied group by 1`,
      );
      const expected = groups.flatMap((g) => [
        ...Array.from({ length: 120 }, (_, i) => `${g} class ${payments} p${i}`),
        ...Array.from({ length: 80 }, (_, i) => `${g} function ${clicks} c${i}`),
      ]);
      expect(rows.map((r) => r.row).sort()).toEqual(expected.sort());
      expect(rows.filter((r) => r.n !== '1')).toEqual([]);
    };
    return { env, expectApplied };
  }

  it('runs a worker from code and with the packaged oncely run: class and function handlers, every record once', async () => {
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig('NodeNext', 'NodeNext', undefined, true), null, 2));
    await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app });
    // @oncely/core/testing, the second entry: a handler's unit test over the in-memory log and store.
    expect((await run(process.execPath, ['dist/unit.js'], { cwd: app })).stdout).toContain('balance:a=12');

    const { env, expectApplied } = await appRun();
    const fromCode = randomName('code');
    const fromCli = randomName('cli');
    const worker = await run(process.execPath, ['dist/worker.js'], { cwd: app, env: env(fromCode) });
    expect(worker.stdout).toContain('worker stopped');
    await run(join(app, 'node_modules/.bin/oncely'), ['run', 'dist/app.js', '--until', 'caught-up'], {
      cwd: app,
      env: env(fromCli),
    });
    await expectApplied([fromCode, fromCli]);
  }, 240_000);

  it('without @platformatic/kafka (an optional peer) the package loads, and --reader platformatic exits 2 naming the install command', async () => {
    expect(existsSync(join(app, 'node_modules/@platformatic/kafka'))).toBe(false);
    const child = spawn(
      join(app, 'node_modules/.bin/oncely'),
      ['status', '--group', randomName('g'), '--reader', 'platformatic'],
      {
        cwd: app,
        env: cleanEnv({ KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), ONCELY_SCHEMA: freshSchema('plt') }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.add(child);
    const result = await collect(child);
    children.delete(child);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('npm install @platformatic/kafka');
  }, 60_000);

  it('runs the same app on Node 22, the oldest Node the packages support (engines >= 22)', async () => {
    expect(existsSync(join(app, 'dist/worker.js')), 'the app is built by the test before').toBe(true);
    // The official Node 22 binary from the npm registry, as the bootstrap fetches Node 24.
    const platform = { linux: 'linux', darwin: 'darwin' }[process.platform as string];
    const arch = { x64: 'x64', arm64: 'arm64' }[process.arch as string];
    expect(platform && arch, `an official Node binary package for ${process.platform}-${process.arch}`).toBeTruthy();
    const pkg = `node-${platform}-${arch}`;
    const prefix = join(scratch, 'node22');
    await run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--no-save', '--loglevel=error', `${pkg}@22`], {
      cwd: scratch,
    });
    const node22 = join(prefix, 'node_modules', pkg, 'bin/node');
    expect((await run(node22, ['--version'], { cwd: app })).stdout).toMatch(/^v22\./);

    const { env, expectApplied } = await appRun();
    const fromCode = randomName('node22-code');
    const fromCli = randomName('node22-cli');
    const worker = await run(node22, ['dist/worker.js'], { cwd: app, env: env(fromCode) });
    expect(worker.stdout).toContain('worker stopped');
    // The packaged bin under Node 22: `#!/usr/bin/env node` finds the node first on PATH.
    await run(join(app, 'node_modules/.bin/oncely'), ['run', 'dist/app.js', '--until', 'caught-up'], {
      cwd: app,
      env: { ...env(fromCli), PATH: `${dirname(node22)}${delimiter}${process.env.PATH ?? ''}` },
    });
    await expectApplied([fromCode, fromCli]);
  }, 300_000);

  it("runs the README's class example as written, against inversify 8", async () => {
    const example = extractBlocks(ROOT, ['README.md']).find((b) => b.code.includes('new Container()'));
    expect(example, "the README's class example (a block with `new Container()`)").toBeDefined();
    const topic = await createTopic(2, { prefix: 'payments' });
    const group = randomName('readme');
    // Only the topic and group names change (they must be fresh); its unqualified `balances`
    // table is found through the connection's search_path.
    const code = example!.code.replaceAll("'payments'", `'${topic}'`).replaceAll("'ledger'", `'${group}'`);
    expect(code).toContain(topic);
    expect(code).toContain(group);
    writeFileSync(join(app, 'src/readme-ledger.ts'), code);
    await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app });

    const schema = freshSchema('readme');
    const pool = pgPool();
    await pool.query(`create schema ${schema}`);
    await pool.query(`create table ${schema}.balances (account text primary key, cents bigint not null)`);
    const producer = kafkaClient().producer();
    await producer.connect();
    try {
      await producer.send({
        topic,
        messages: Array.from({ length: 90 }, (_, i) => ({
          key: `acct-${i % 4}`,
          value: JSON.stringify({ account: `acct-${i % 4}`, cents: i }),
        })),
      });
    } finally {
      await producer.disconnect();
    }

    const url = new URL(databaseUrl());
    url.searchParams.set('options', `-c search_path=${schema}`);
    await run(join(app, 'node_modules/.bin/oncely'), ['run', 'dist/readme-ledger.js', '--until', 'caught-up'], {
      cwd: app,
      env: {
        KAFKA_BROKERS: brokers().join(','),
        DATABASE_URL: url.toString(),
        ONCELY_SCHEMA: freshSchema('oncely'),
        ONCELY_LOG_LEVEL: 'warn',
      },
    });
    const { rows } = await pool.query<{ account: string; cents: string }>(
      `select account, cents from ${schema}.balances order by account`,
    );
    const expected = [0, 1, 2, 3].map((a) => ({
      account: `acct-${a}`,
      cents: `${Array.from({ length: 90 }, (_, i) => i)
        .filter((i) => i % 4 === a)
        .reduce((x, y) => x + y, 0)}`,
    }));
    expect(rows).toEqual(expected);
  }, 240_000);
});
