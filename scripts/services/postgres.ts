import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { stateDir } from './paths.js';
import { portAnswers, redactUrl, run, runuserBinary, ServiceError } from './util.js';

/** The database the project uses on a server it finds or starts; created when missing. */
const databaseName = process.env.ONCELY_DATABASE ?? 'oncely';
const privatePort = Number(process.env.ONCELY_PG_PORT ?? 55432);
const privateDir = join(stateDir, 'postgres');

async function tryConnect(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates `databaseName` on the server behind adminUrl when it does not exist. */
async function ensureDatabase(adminUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const r = await client.query('select 1 from pg_database where datname = $1', [databaseName]);
    if (r.rowCount === 0) {
      // Identifiers cannot be bound; the name comes from our own configuration and is checked here.
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(databaseName))
        throw new ServiceError(`ONCELY_DATABASE=${databaseName} is not a plain identifier.`);
      await client.query(`create database ${databaseName}`).catch((e: { code?: string }) => {
        if (e.code !== '42P04') throw e; // created meanwhile by a concurrent `up`
      });
    }
  } finally {
    await client.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${databaseName}`;
  return u.toString();
}

function findPgBin(name: string): string | undefined {
  if (!run('which', [name]).ok) {
    const base = '/usr/lib/postgresql';
    if (!existsSync(base)) return undefined;
    const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const p = join(base, v, 'bin', name);
      if (existsSync(p)) return p;
    }
    return undefined;
  }
  return name;
}

/** A private cluster under .oncely/postgres, made with initdb and started with pg_ctl. */
async function startPrivateCluster(): Promise<string> {
  const initdb = findPgBin('initdb');
  const pgCtl = findPgBin('pg_ctl');
  if (!initdb || !pgCtl) {
    throw new ServiceError(
      'No PostgreSQL found: DATABASE_URL is not set, nothing answers on 127.0.0.1:5432, and initdb/pg_ctl are not installed. Set DATABASE_URL, start a server on 127.0.0.1:5432, or install PostgreSQL (apt-get install postgresql).',
    );
  }
  // initdb refuses to run as root; run the private cluster as the postgres system user then.
  const asRoot = process.getuid?.() === 0;
  const wrap = (cmd: string, args: string[]) =>
    asRoot ? run(runuserBinary(), ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);
  mkdirSync(privateDir, { recursive: true });
  if (asRoot) run('chown', ['-R', 'postgres', privateDir]);
  const data = join(privateDir, 'data');
  if (!existsSync(join(data, 'PG_VERSION'))) {
    const r = wrap(initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    if (!r.ok) throw new ServiceError(`initdb failed:\n${r.stderr || r.stdout}`);
  }
  if (!(await portAnswers('127.0.0.1', privatePort))) {
    const r = wrap(pgCtl, [
      '-D',
      data,
      '-l',
      join(privateDir, 'postgres.log'),
      '-o',
      `-p ${privatePort} -c listen_addresses=127.0.0.1 -k ${privateDir}`,
      '-w',
      'start',
    ]);
    if (!r.ok) throw new ServiceError(`pg_ctl start failed:\n${r.stderr || r.stdout}\nSee ${join(privateDir, 'postgres.log')}`);
  }
  return `postgres://postgres@127.0.0.1:${privatePort}/postgres`;
}

/** Stops the private cluster when this project started one. */
export function stopPrivateCluster(): boolean {
  const data = join(privateDir, 'data');
  const pgCtl = findPgBin('pg_ctl');
  if (!pgCtl || !existsSync(join(data, 'postmaster.pid'))) return false;
  const asRoot = process.getuid?.() === 0;
  const args = ['-D', data, '-m', 'fast', 'stop'];
  return (asRoot ? run(runuserBinary(), ['-u', 'postgres', '--', pgCtl, ...args]) : run(pgCtl, args)).ok;
}

/**
 * Finds PostgreSQL: DATABASE_URL when set, else the server on 127.0.0.1:5432, else a private
 * cluster. Returns a URL that connects.
 */
export async function ensurePostgres(): Promise<{ url: string; source: 'env' | 'local' | 'private' }> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) {
    const err = await tryConnect(fromEnv);
    if (err) throw new ServiceError(`DATABASE_URL (${redactUrl(fromEnv)}) does not connect: ${err}`);
    return { url: fromEnv, source: 'env' };
  }
  if (await portAnswers('127.0.0.1', 5432)) {
    const admin = 'postgres://postgres@127.0.0.1:5432/postgres';
    const err = await tryConnect(admin);
    if (!err) return { url: await ensureDatabase(admin), source: 'local' };
    throw new ServiceError(
      `A server answers on 127.0.0.1:5432 but ${admin} does not connect (${err}). Set DATABASE_URL to a URL that does.`,
    );
  }
  const admin = await startPrivateCluster();
  return { url: await ensureDatabase(admin), source: 'private' };
}
