import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  App,
  ConfigError,
  consoleLogger,
  createWorker,
  handleSignals,
  KafkajsPartitionReader,
  type LogLevel,
  type OffsetSpec,
} from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import { type ConnectionFlags, ExitCode, resolveConnections } from '../config.js';

/** Flags of `oncely run`. */
export interface RunFlags extends ConnectionFlags {
  partitions?: string;
  worker?: string;
  workerId?: string;
  initialOffset?: string;
  offsetOutOfRange?: 'fail' | 'earliest' | 'latest';
  batchMaxRecords?: string;
  drainTimeout?: string;
  logLevel?: LogLevel;
  migrate?: boolean;
}

/** Loads an app module: its default export or its `app` export must be an App from defineApp(). */
export async function loadApp(modulePath: string): Promise<App<unknown>> {
  const abs = isAbsolute(modulePath) ? modulePath : resolve(process.cwd(), modulePath);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`Cannot load app module ${modulePath}: ${(e as Error).message}`, { cause: e });
  }
  const app = mod.default ?? mod.app;
  if (!(app instanceof App) && !(app && typeof app === 'object' && 'group' in app && 'handlerFor' in app)) {
    throw new ConfigError(`${modulePath} must export an app made with defineApp() as its default export or as \`app\``);
  }
  return app as App<unknown>;
}

function parseInitialOffset(v: string | undefined): OffsetSpec | undefined {
  if (v === undefined) return undefined;
  if (v === 'earliest' || v === 'latest') return v;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new ConfigError(`--initial-offset must be earliest, latest or an ISO date-time; got ${v}`);
  return { timestamp: t };
}

function parseIntFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ConfigError(`${name} must be an integer; got ${v}`);
  return n;
}

/** `oncely run <app>`: a worker that applies its partitions until SIGTERM/SIGINT. Returns the exit code. */
export async function runCommand(modulePath: string, flags: RunFlags): Promise<number> {
  const conn = resolveConnections(flags);
  const logger = consoleLogger({ level: flags.logLevel });
  const app = await loadApp(modulePath);
  const store = new PostgresStore({ connectionString: conn.databaseUrl, schema: conn.schema });
  if (flags.migrate !== false) await store.migrate();
  const reader = new KafkajsPartitionReader({ brokers: conn.brokers, clientId: `oncely-${app.group}`, logger });
  const worker = createWorker(app, {
    store,
    reader,
    logger,
    workerId: flags.workerId,
    partitions: flags.partitions,
    split: flags.worker,
    initialOffset: parseInitialOffset(flags.initialOffset),
    offsetOutOfRange: flags.offsetOutOfRange,
    batchMaxRecords: parseIntFlag('--batch-max-records', flags.batchMaxRecords),
    drainTimeoutMs: parseIntFlag('--drain-timeout', flags.drainTimeout),
  });
  const signals = handleSignals(worker, logger);
  try {
    await worker.start();
    await worker.done;
    logger.info('worker stopped');
    return signals.aborted ? ExitCode.ABORTED : ExitCode.OK;
  } catch (e) {
    logger.error('worker failed', { error: (e as Error).message });
    return ExitCode.FAILED;
  } finally {
    signals.dispose();
  }
}
