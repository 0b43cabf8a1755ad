import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type App,
  ConfigError,
  consoleLogger,
  createOffsetMirror,
  createWorker,
  handleSignals,
  KafkajsPartitionReader,
  type LogLevel,
  type OffsetMirror,
  type OffsetSpec,
} from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import { type Command, Option } from 'commander';
import { type ConnectionFlags, ExitCode, resolveConnections } from '../config.js';
import { connectionOptions } from '../options.js';
import { printJson } from '../output.js';
import { reportProgress, summarize } from '../progress.js';

/** Flags of `oncely run`. */
export interface RunFlags extends ConnectionFlags {
  partitions?: string;
  worker?: string;
  workerId?: string;
  initialOffset?: string;
  offsetOutOfRange?: 'fail' | 'earliest' | 'latest';
  batchMaxRecords?: string;
  drainTimeout?: string;
  retryAttempts?: string;
  onExhausted?: 'dead-letter' | 'stop-partition';
  crashBudget?: string;
  startTimeout?: string;
  logLevel?: LogLevel;
  migrate?: boolean;
  until?: 'forever' | 'caught-up';
  progress?: boolean;
  progressInterval?: string;
  mirrorGroupId?: string;
  json?: boolean;
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
  // Duck-typed: the app module may have been built against another copy of @oncely/core.
  if (!(app && typeof app === 'object' && 'group' in app && 'handlerFor' in app)) {
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

/**
 * `oncely run <app>`: a worker that applies its partitions until SIGTERM/SIGINT, or, with
 * `--until caught-up`, until the high watermarks taken at start (with a progress bar). Returns the exit code.
 */
export async function runCommand(modulePath: string, flags: RunFlags): Promise<number> {
  const conn = resolveConnections(flags);
  const logger = consoleLogger({ level: flags.logLevel });
  const app = await loadApp(modulePath);
  const progressIntervalMs = parseIntFlag('--progress-interval', flags.progressInterval);
  const store = new PostgresStore({ connectionString: conn.databaseUrl, schema: conn.schema });
  let mirror: OffsetMirror | undefined;
  if (flags.mirrorGroupId !== undefined) {
    mirror = createOffsetMirror({
      brokers: conn.brokers,
      groupId: flags.mirrorGroupId,
      clientId: `oncely-${app.group}-mirror`,
      logger,
    });
  }
  const reader = new KafkajsPartitionReader({ brokers: conn.brokers, clientId: `oncely-${app.group}`, logger });
  const bounded = flags.until === 'caught-up';
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
    retryAttempts: parseIntFlag('--retry-attempts', flags.retryAttempts),
    onExhausted: flags.onExhausted,
    crashBudget: parseIntFlag('--crash-budget', flags.crashBudget),
    startTimeoutMs: parseIntFlag('--start-timeout', flags.startTimeout),
    // Inside the worker's start-up wait: a database that is still down is waited for, not fatal.
    prepare: flags.migrate !== false ? () => store.migrate() : undefined,
    until: flags.until,
  });
  if (mirror) worker.on('commit', mirror.onCommit);
  const signals = handleSignals(worker, logger);
  let stopProgress: (() => void) | undefined;
  try {
    await worker.start();
    if (bounded && flags.progress !== false)
      stopProgress = reportProgress(() => worker.progress(), { intervalMs: progressIntervalMs });
    await worker.done;
    stopProgress?.();
    stopProgress = undefined;
    const progress = worker.progress();
    const { done, total } = summarize(progress);
    if (bounded && !signals.aborted) {
      if (flags.json)
        printJson({ group: app.group, caughtUp: progress.every((p) => p.caughtUp), done, total, partitions: progress });
      else
        console.log(
          `caught up: ${done} of ${total} record(s) applied over ${progress.length} partition(s) of group ${app.group}`,
        );
    }
    logger.info('worker stopped');
    return signals.aborted ? ExitCode.ABORTED : ExitCode.OK;
  } catch (e) {
    logger.error('worker failed', { error: (e as Error).message });
    return ExitCode.FAILED;
  } finally {
    stopProgress?.();
    signals.dispose();
    // After the worker: its last commits are mirrored before the process exits.
    await mirror?.close();
  }
}

/** Registers `oncely run`. */
export function registerRun(program: Command, setCode: (code: number) => void): void {
  connectionOptions(
    program
      .command('run')
      .description('Run a worker for an app module (default export or `app` from defineApp) until SIGTERM/SIGINT')
      .argument('<app-module>', 'path to the app module (.js, or .ts under tsx)')
      .option('--partitions <selector>', 'static assignment, e.g. "payments:0-3,orders:*" (default: all)')
      .option('--worker <i/n>', 'deterministic split: this is worker i of n')
      .option('--worker-id <id>', 'identity in claims and the offset log (default: host-pid-random)')
      .option('--initial-offset <where>', 'start of partitions never seen: earliest | latest | ISO date-time', 'earliest')
      .addOption(
        new Option('--offset-out-of-range <policy>', 'when retention deleted the stored offset')
          .choices(['fail', 'earliest', 'latest'])
          .default('fail'),
      )
      .option('--batch-max-records <n>', 'records per transaction (default 2000)')
      .option('--drain-timeout <ms>', 'how long a stop waits for in-flight transactions (default 30000)')
      .option('--retry-attempts <n>', 'tries of a failing record before --on-exhausted (default 5)')
      .addOption(
        new Option('--on-exhausted <what>', 'when a record has used its retries')
          .choices(['dead-letter', 'stop-partition'])
          .default('dead-letter'),
      )
      .option('--crash-budget <n>', 'process deaths while applying one record before it is dead-lettered (default 5)')
      .option(
        '--start-timeout <ms>',
        'how long start-up waits for an unavailable database or broker, or a locked partition row (default 300000; 0: forever)',
      )
      .addOption(
        new Option('--until <when>', 'forever, or caught-up: stop at the high watermarks taken at start')
          .choices(['forever', 'caught-up'])
          .default('forever'),
      )
      .option('--no-progress', 'no progress bar/lines for --until caught-up')
      .option('--progress-interval <ms>', 'progress redraw interval (default 250 on a TTY, 2000 otherwise)')
      .option('--mirror-group-id <id>', "mirror positions into this Kafka group's offsets after commits (for lag tools)")
      .option('--json', 'with --until caught-up: a JSON summary on stdout')
      .addOption(new Option('--log-level <level>').choices(['debug', 'info', 'warn', 'error']).default('info'))
      .option('--no-migrate', 'do not apply migrations at start'),
  ).action(async (modulePath: string, flags: RunFlags) => setCode(await runCommand(modulePath, flags)));
}
