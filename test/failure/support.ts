/**
 * Fixtures of the failure tests: a private PostgreSQL cluster and a private Kafka broker (so an
 * outage never touches the shared services other test files use), the `oncely` binary, a logger
 * that keeps every line, and the app the dlq tests requeue.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@oncely/core';
import { type BrokerSpec, clusterSpecs, startBroker, stopBroker } from '../../scripts/services/kafka.js';
import { runuserBinary } from '../../scripts/services/util.js';
import { cleanup } from '../support/cleanup.js';
import { freePort, freePortPair } from '../support/ports.js';

const exec = promisify(execFile);

export { type CliResult, collect, oncely, ROOT, spawnTs } from '../support/cli.js';
export const FIXTURES = resolve(import.meta.dirname, 'fixtures');

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
  /** `pg_ctl stop -m immediate`: down until {@link start}. */
  stop(): Promise<void>;
  /** Starts the cluster again (after {@link stop}). */
  start(): Promise<void>;
}

/** Starts a throwaway cluster (initdb + pg_ctl, as the postgres OS user when running as root); removed after the test (or the file, when made in a hook). */
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
    asRoot ? exec(runuserBinary(), ['-u', 'postgres', '--', pgBin(bin), ...args]) : exec(pgBin(bin), args);
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
  // Registered before the start: a start that fails half-way still leaves a postmaster to stop.
  cleanup(async () => {
    await run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  await ctl(['-w', 'start']);
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
    stop: async () => {
      await run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    },
    start: async () => {
      await ctl(['-w', 'start']);
    },
  };
}

/** A private single-node broker, stopped and removed after the test (or the file, when made in a hook). */
export interface PrivateBroker {
  brokers: string[];
  /** The SASL_PLAINTEXT listener, when asked for. */
  saslBrokers: string[];
  /** The SSL listener, when asked for. */
  tlsBrokers: string[];
  /** The broker's log.dirs: `<dataDir>/<topic>-<partition>/*.log` are its segments. */
  dataDir: string;
  /** SIGKILL the broker (a crash), wait `downMs`, start it again on the same data. */
  crash(downMs: number): Promise<void>;
  /** SIGKILL the broker: down until {@link start}. */
  stop(): Promise<void>;
  /** Starts the broker again on its data (after {@link stop}). */
  start(): Promise<void>;
}

/** A private broker; `sasl` and `tls` add a SASL_PLAINTEXT and an SSL listener (see BrokerSpec). */
export async function privateBroker(
  extra: { sasl?: { users: Record<string, string> }; tls?: { keystore: string; truststore?: string } } = {},
): Promise<PrivateBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'oncely-kafka-'));
  const port = await freePortPair();
  const taken = new Set([port, port + 1]);
  const another = async () => {
    for (;;) {
      const p = await freePort();
      if (taken.has(p)) continue;
      taken.add(p);
      return p;
    }
  };
  const spec: BrokerSpec = {
    port,
    dir,
    heapMb: 512,
    sasl: extra.sasl && { port: await another(), users: extra.sasl.users },
    tls: extra.tls && { port: await another(), ...extra.tls },
  };
  cleanup(async () => {
    await stopBroker(spec, { kill: true, purge: true }).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  const started = await startBroker(spec);
  return {
    brokers: started.brokers,
    saslBrokers: spec.sasl ? [`127.0.0.1:${spec.sasl.port}`] : [],
    tlsBrokers: spec.tls ? [`127.0.0.1:${spec.tls.port}`] : [],
    dataDir: join(dir, 'data'),
    crash: async (downMs) => {
      await stopBroker(spec, { kill: true });
      await new Promise((r) => setTimeout(r, downMs));
      await startBroker(spec);
    },
    stop: async () => {
      await stopBroker(spec, { kill: true });
    },
    start: async () => {
      await startBroker(spec);
    },
  };
}

/** One node of a {@link PrivateCluster}. */
export interface ClusterNode {
  nodeId: number;
  address: string;
}

/** A private multi-node KRaft cluster (combined broker+controller nodes), owned by the file that makes it. */
export interface PrivateCluster {
  /** Every node's address (bootstrap list). */
  brokers: string[];
  nodes: ClusterNode[];
  /** SIGKILLs a node (a crash: its data stays, the quorum keeps the others going). */
  kill(nodeId: number): Promise<void>;
  /** Starts a killed node again on its data. */
  start(nodeId: number): Promise<void>;
}

/**
 * Starts an n-node cluster on ports from the OS, state in a temp dir; every node is stopped and
 * the dir removed after the file, whatever happened. Timeouts are short so that a killed node is
 * fenced (its partitions lose their leader or fail over) within seconds.
 */
export async function privateCluster(
  n = 3,
  config: Readonly<Record<string, string | number | boolean>> = {},
): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'oncely-cluster-'));
  const nodes: Array<{ port: number; controllerPort: number; dir: string }> = [];
  for (let i = 0; i < n; i++) {
    nodes.push({ port: await freePort(), controllerPort: await freePort(), dir: join(dir, `node-${i + 1}`) });
  }
  const specs: BrokerSpec[] = clusterSpecs(nodes, {
    heapMb: 448,
    // Three JVMs start at once on a small machine: the first start of each waits for a quorum.
    startTimeoutMs: 180_000,
    config: {
      // Shorter than the defaults (2 s, 9 s) so a killed node is fenced sooner; not much shorter:
      // the heartbeat's request timeout is its interval, and a loaded machine must still make it.
      'broker.heartbeat.interval.ms': 1000,
      'broker.session.timeout.ms': 5000,
      'replica.lag.time.max.ms': 5000,
      ...config,
    },
  });
  cleanup(async () => {
    await Promise.all(specs.map((spec) => stopBroker(spec, { kill: true, purge: true }).catch(() => {})));
    rmSync(dir, { recursive: true, force: true });
  });
  // Together: a node answers only once a quorum of controllers is up.
  const started = await Promise.all(specs.map((spec) => startBroker(spec)));
  const spec = (nodeId: number) => {
    const found = specs.find((s) => s.nodeId === nodeId);
    if (!found) throw new Error(`no node ${nodeId} in this cluster`);
    return found;
  };
  return {
    brokers: started.map((s) => s.brokers[0]!),
    nodes: specs.map((s, i) => ({ nodeId: s.nodeId!, address: started[i]!.brokers[0]! })),
    kill: async (nodeId) => {
      await stopBroker(spec(nodeId), { kill: true });
    },
    start: async (nodeId) => {
      await startBroker(spec(nodeId));
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
