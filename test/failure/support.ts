/**
 * Fixtures of the failure tests: a private PostgreSQL cluster and a private Kafka broker (so an
 * outage never touches the shared services other test files use), the `oncely` binary, a logger
 * that keeps every line, and the app the dlq tests requeue.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@oncely/core';
import { afterAll } from 'vitest';
import { startBroker, stopBroker } from '../../scripts/services/kafka.js';

const exec = promisify(execFile);

export { type CliResult, collect, oncely, ROOT, spawnTs } from '../support/cli.js';
export const FIXTURES = resolve(import.meta.dirname, 'fixtures');

/** A port that was free a moment ago (and, with `pair`, the next one too). */
export async function freePort(pair = false): Promise<number> {
  for (;;) {
    const port = pair ? 41_000 + Math.floor(Math.random() * 8000) : await anyPort();
    if (!pair || ((await portFree(port)) && (await portFree(port + 1)))) return port;
  }
}

function anyPort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', () => done(false));
    s.listen(port, '127.0.0.1', () => s.close(() => done(true)));
  });
}

function pgBin(name: string): string {
  const base = '/usr/lib/postgresql';
  const v = readdirSync(base).sort((a, b) => Number(b) - Number(a))[0];
  if (!v) throw new Error(`no PostgreSQL under ${base}`);
  return join(base, v, 'bin', name);
}

/** A private PostgreSQL cluster, owned by the file that makes it. */
export interface PrivatePostgres {
  url: string;
  port: number;
  /** `pg_ctl restart -m immediate`: every connection dies without a clean shutdown (crash recovery on start). */
  restartImmediate(): Promise<void>;
  /** `pg_ctl stop -m immediate`, down for `downMs`, then start again. */
  outage(downMs: number): Promise<void>;
}

/** Starts a throwaway cluster (initdb + pg_ctl, as the postgres OS user when running as root); removed after the file. */
export async function privatePostgres(options: { password?: string } = {}): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'oncely-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    chmodSync(dir, 0o755);
    const uid = Number((await exec('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await exec('id', ['-g', 'postgres'])).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const run = (bin: string, args: string[]) =>
    asRoot ? exec('runuser', ['-u', 'postgres', '--', pgBin(bin), ...args]) : exec(pgBin(bin), args);
  const port = await freePort();
  const auth = ['--auth=trust'];
  if (options.password !== undefined) {
    // Password authentication over TCP, so a wrong password is rejected (28P01).
    const pwfile = join(dir, 'pwfile');
    writeFileSync(pwfile, `${options.password}\n`, { mode: 0o644 });
    auth.splice(0, 1, '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`);
  }
  await run('initdb', ['-D', data, '-U', 'postgres', ...auth, '-E', 'UTF8', '--no-sync']);
  const ctl = (args: string[]) =>
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'postgres.log'),
      '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off`,
      ...args,
    ]);
  await ctl(['-w', 'start']);
  afterAll(async () => {
    await run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    url: `postgres://postgres${options.password === undefined ? '' : `:${encodeURIComponent(options.password)}`}@127.0.0.1:${port}/postgres`,
    port,
    restartImmediate: async () => {
      await ctl(['-m', 'immediate', '-w', 'restart']);
    },
    outage: async (downMs) => {
      await run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      await new Promise((r) => setTimeout(r, downMs));
      await ctl(['-w', 'start']);
    },
  };
}

/** A private single-node broker, owned by the file that makes it. */
export interface PrivateBroker {
  brokers: string[];
  /** The broker's log.dirs: `<dataDir>/<topic>-<partition>/*.log` are its segments. */
  dataDir: string;
  /** SIGKILL the broker (a crash), wait `downMs`, start it again on the same data. */
  crash(downMs: number): Promise<void>;
}

export async function privateBroker(): Promise<PrivateBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'oncely-kafka-'));
  const spec = { port: await freePort(true), dir, heapMb: 512 };
  const started = await startBroker(spec);
  afterAll(async () => {
    await stopBroker(spec, { kill: true, purge: true }).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    brokers: started.brokers,
    dataDir: join(dir, 'data'),
    crash: async (downMs) => {
      await stopBroker(spec, { kill: true });
      await new Promise((r) => setTimeout(r, downMs));
      await startBroker(spec);
    },
  };
}

/** A logger that keeps every line (level, message, fields) for assertions. */
export function captureLogger(lines: string[] = []): Logger & { lines: string[] } {
  const make = (base: Record<string, unknown>): Logger => {
    const log = (level: string) => (message: string, fields?: Record<string, unknown>) => {
      lines.push(
        `${level} ${message} ${JSON.stringify({ ...base, ...fields }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Error ? { message: v.message, stack: v.stack } : v))}`,
      );
    };
    return {
      debug: log('debug'),
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
      child: (f) => make({ ...base, ...f }),
    };
  };
  return Object.assign(make({}), { lines });
}
