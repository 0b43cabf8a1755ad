import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type App,
  ConfigError,
  createOffsetMirror,
  createWorker,
  handleSignals,
  type LogLevel,
  type ObservabilityServer,
  type OffsetMirror,
  type OffsetSpec,
  OncelyError,
  type PartitionReader,
  serveObservability,
  stopOnProcessFailure,
  type WorkerOptions,
  wasLogged,
  workerHealth,
  workerMetrics,
} from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import { type ConnectionFlags, ExitCode, isConfigurationError, resolveConnections } from '../config.js';
import { flags as addFlags, type FlagSpec, flag, inFlagTerms, intFlag } from '../flags.js';
import { createReader, type KafkaFlags, kafkaReaderOptions, READER_FLAG_NAMES } from '../kafka.js';
import { cliLogger, LOG_FORMATS } from '../logging.js';
import { connectionOptions, STORE_FLAG_NAMES } from '../options.js';
import { printJson } from '../output.js';
import { outcomeOf, reportProgress, summaryLine } from '../progress.js';

/** Flags of `oncely run`. */
export interface RunFlags extends ConnectionFlags, KafkaFlags {
  /** The app module, when not given as the argument. */
  app?: string;
  partitions?: string;
  worker?: string;
  membership?: 'static' | 'elastic';
  force?: boolean;
  onHeld?: 'wait' | 'fail';
  maxPartitions?: string;
  weight?: string;
  heartbeatInterval?: string;
  sessionTimeout?: string;
  partitionRefresh?: string;
  workerId?: string;
  initialOffset?: string;
  offsetOutOfRange?: 'fail' | 'earliest' | 'latest';
  batchMaxRecords?: string;
  batchMaxBytes?: string;
  batchLinger?: string;
  fetchMaxWait?: string;
  fetchMaxBytesPerPartition?: string;
  lease?: string;
  poolSize?: string;
  lockTimeout?: string;
  idleInTransactionTimeout?: string;
  drainTimeout?: string;
  slowBatchWarning?: string;
  retryAttempts?: string;
  retryInitialDelay?: string;
  retryMaxDelay?: string;
  onExhausted?: 'dead-letter' | 'stop-partition';
  crashBudget?: string;
  onCrashLoop?: 'stop-partition' | 'dead-letter';
  maxConsecutiveDeadLetters?: string;
  startTimeout?: string;
  migrate?: boolean;
  until?: 'forever' | 'caught-up';
  progress?: boolean;
  progressInterval?: string;
  mirrorGroupId?: string;
  metricsPort?: string;
  metricsHost?: string;
  json?: boolean;
  logLevel?: LogLevel;
  logFormat?: string;
}

/** Loads an app module: its default export or its `app` export must be an App from defineApp(). */
export async function loadApp(modulePath: string): Promise<App<unknown>> {
  const abs = isAbsolute(modulePath) ? modulePath : resolve(process.cwd(), modulePath);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`Cannot load app module ${modulePath}: ${(e as Error).message}${typeScriptHint(abs, e)}`, { cause: e });
  }
  const app = mod.default ?? mod.app;
  // Duck-typed: the app module may have been built against another copy of @oncely/core.
  if (!(app && typeof app === 'object' && 'group' in app && 'handlerFor' in app)) {
    throw new ConfigError(
      `${modulePath} must export an app made with defineApp() as its default export or as \`app\`; ${describeExports(mod)}`,
    );
  }
  return app as App<unknown>;
}

/** What a module exports instead of an app, for the message that refuses it. */
function describeExports(mod: Record<string, unknown>): string {
  const names = Object.keys(mod);
  if (names.length === 0) return 'it exports nothing (is it the right file, or a CommonJS module without exports?)';
  const what = (v: unknown) =>
    v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
  const shown = names.slice(0, 10).map((n) => `${n} (${what(mod[n])})`);
  const more = names.length > shown.length ? `, and ${names.length - shown.length} more` : '';
  const hint =
    mod.default === undefined && mod.app === undefined
      ? ''
      : ' (an app has a group and handlers: `export default defineApp({ group }).handle(…)`)';
  return `it exports ${shown.join(', ')}${more}${hint}`;
}

/**
 * Node runs a .ts module by stripping its types only when they are erasable: decorators, parameter
 * properties and enums fail with a SyntaxError (or, before type stripping, an unknown extension).
 */
function typeScriptHint(path: string, e: unknown): string {
  if (!/\.[cm]?ts$/.test(path)) return '';
  const code = (e as { code?: unknown }).code;
  if (code !== 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX' && code !== 'ERR_UNKNOWN_FILE_EXTENSION' && !(e instanceof SyntaxError)) {
    return '';
  }
  return (
    '. Node runs a .ts module itself only when its TypeScript can be erased (no decorators, parameter properties or enums): ' +
    "compile it (tsc) and run the .js, or run oncely under tsx: NODE_OPTIONS='--import tsx' oncely run …"
  );
}

function parseInitialOffset(v: string | undefined): OffsetSpec | undefined {
  if (v === undefined) return undefined;
  if (v === 'earliest' || v === 'latest') return v;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new ConfigError(`--initial-offset must be earliest, latest or an ISO date-time; got ${v}.`);
  return { timestamp: t };
}

/** Worker option names as the flags that set them, for inFlagTerms. */
const WORKER_FLAG_NAMES: Readonly<Record<string, string>> = {
  workerId: '--worker-id',
  partitions: '--partitions',
  'Bad partition selector': '--partitions',
  split: '--worker',
  'Bad worker split': '--worker',
  membership: '--membership',
  force: '--force',
  onHeld: '--on-held',
  maxPartitions: '--max-partitions',
  weight: '--weight',
  heartbeatIntervalMs: '--heartbeat-interval',
  sessionTimeoutMs: '--session-timeout',
  partitionRefreshMs: '--partition-refresh',
  initialOffset: '--initial-offset',
  offsetOutOfRange: '--offset-out-of-range',
  batchMaxRecords: '--batch-max-records',
  batchMaxBytes: '--batch-max-bytes',
  batchLingerMs: '--batch-linger',
  fetchMaxWaitMs: '--fetch-max-wait',
  fetchMaxBytesPerPartition: '--fetch-max-bytes-per-partition',
  leaseMs: '--lease',
  retryAttempts: '--retry-attempts',
  onExhausted: '--on-exhausted',
  crashBudget: '--crash-budget',
  onCrashLoop: '--on-crash-loop',
  maxConsecutiveDeadLetters: '--max-consecutive-dead-letters',
  retryInitialDelayMs: '--retry-initial-delay',
  retryMaxDelayMs: '--retry-max-delay',
  drainTimeoutMs: '--drain-timeout',
  slowBatchWarningMs: '--slow-batch-warning',
  startTimeoutMs: '--start-timeout',
  until: '--until',
};

type TuningOptions = Omit<WorkerOptions<unknown>, 'store' | 'reader' | 'logger' | 'prepare'>;

/** The worker options the flags set, parsed (types and formats; ranges are the worker's to check). */
export function workerOptionsFromFlags(flags: RunFlags): TuningOptions {
  return {
    workerId: flags.workerId,
    partitions: flags.partitions,
    split: flags.worker,
    membership: flags.membership,
    ...(flags.force ? { force: true } : {}),
    onHeld: flags.onHeld,
    maxPartitions: intFlag('--max-partitions', flags.maxPartitions),
    weight: intFlag('--weight', flags.weight),
    heartbeatIntervalMs: intFlag('--heartbeat-interval', flags.heartbeatInterval),
    sessionTimeoutMs: intFlag('--session-timeout', flags.sessionTimeout),
    partitionRefreshMs: intFlag('--partition-refresh', flags.partitionRefresh),
    initialOffset: parseInitialOffset(flags.initialOffset),
    offsetOutOfRange: flags.offsetOutOfRange,
    batchMaxRecords: intFlag('--batch-max-records', flags.batchMaxRecords),
    batchMaxBytes: intFlag('--batch-max-bytes', flags.batchMaxBytes),
    batchLingerMs: intFlag('--batch-linger', flags.batchLinger),
    fetchMaxWaitMs: intFlag('--fetch-max-wait', flags.fetchMaxWait),
    fetchMaxBytesPerPartition: intFlag('--fetch-max-bytes-per-partition', flags.fetchMaxBytesPerPartition),
    leaseMs: intFlag('--lease', flags.lease),
    drainTimeoutMs: intFlag('--drain-timeout', flags.drainTimeout),
    slowBatchWarningMs: intFlag('--slow-batch-warning', flags.slowBatchWarning),
    retryAttempts: intFlag('--retry-attempts', flags.retryAttempts),
    retryInitialDelayMs: intFlag('--retry-initial-delay', flags.retryInitialDelay),
    retryMaxDelayMs: intFlag('--retry-max-delay', flags.retryMaxDelay),
    onExhausted: flags.onExhausted,
    crashBudget: intFlag('--crash-budget', flags.crashBudget),
    onCrashLoop: flags.onCrashLoop,
    maxConsecutiveDeadLetters: intFlag('--max-consecutive-dead-letters', flags.maxConsecutiveDeadLetters),
    startTimeoutMs: intFlag('--start-timeout', flags.startTimeout),
    until: flags.until,
  };
}

/**
 * `oncely run <app>`: a worker that applies its partitions until SIGTERM/SIGINT, or, with
 * `--until caught-up`, until the high watermarks taken at start (with a progress bar). Returns the
 * exit code; configuration errors (bad flags, a missing topic, rejected credentials) are thrown.
 */
export async function runCommand(modulePath: string | undefined, flags: RunFlags): Promise<number> {
  // Every flag is checked before anything opens, so bad usage exits at once.
  const appPath = modulePath ?? flags.app;
  if (!appPath) throw new ConfigError('run needs the app module: oncely run ./dist/app.js (or set ONCELY_APP).');
  const conn = resolveConnections(flags);
  const tuning = workerOptionsFromFlags(flags);
  const progressIntervalMs = intFlag('--progress-interval', flags.progressInterval);
  if (progressIntervalMs !== undefined && progressIntervalMs < 1) {
    throw new ConfigError(`--progress-interval must be a positive number of milliseconds; got ${flags.progressInterval}.`);
  }
  const metricsPort = intFlag('--metrics-port', flags.metricsPort);
  if (metricsPort !== undefined && (metricsPort < 0 || metricsPort > 65_535)) {
    throw new ConfigError(`--metrics-port must be a port from 0 to 65535; got ${flags.metricsPort}.`);
  }
  const poolMax = intFlag('--pool-size', flags.poolSize);
  const lockTimeoutMs = intFlag('--lock-timeout', flags.lockTimeout);
  const idleInTransactionTimeoutMs = intFlag('--idle-in-transaction-timeout', flags.idleInTransactionTimeout);
  const logger = cliLogger({ level: flags.logLevel, format: flags.logFormat });
  const app = await loadApp(appPath);
  const readerOptions = kafkaReaderOptions(flags, conn.brokers, `oncely-${app.group}`);

  const store = inFlagTerms(
    STORE_FLAG_NAMES,
    () =>
      new PostgresStore({
        connectionString: conn.databaseUrl,
        schema: conn.schema,
        poolMax,
        lockTimeoutMs,
        idleInTransactionTimeoutMs,
        logger,
      }),
  );
  let reader: PartitionReader | undefined;
  let mirror: OffsetMirror | undefined;
  let observability: ObservabilityServer | undefined;
  try {
    reader = inFlagTerms(READER_FLAG_NAMES, () => createReader(flags, { ...readerOptions, logger }));
    logger.info('kafka reader', { reader: flags.reader ?? 'kafkajs' });
    const { ssl, sasl } = readerOptions;
    if (flags.mirrorGroupId !== undefined) {
      const groupId = flags.mirrorGroupId;
      mirror = inFlagTerms({ groupId: '--mirror-group-id' }, () =>
        createOffsetMirror({ brokers: conn.brokers, groupId, clientId: `${readerOptions.clientId}-mirror`, ssl, sasl, logger }),
      );
    }
    const w = inFlagTerms(WORKER_FLAG_NAMES, () =>
      createWorker(app, {
        ...tuning,
        store,
        reader: reader!,
        // Every line of the worker carries its group (and, from the worker, its id).
        logger: logger.child({ group: app.group }),
        // Inside the worker's start-up wait: a database that is still down is waited for, not fatal.
        // With --no-migrate the schema is checked instead: one behind stops the start with the
        // migration it lacks (SCHEMA_TOO_OLD), not with the first statement that needs it.
        prepare: flags.migrate !== false ? () => store.migrate() : () => store.assertMigrated(),
      }),
    );
    if (mirror) w.on('commit', mirror.onCommit);
    if (metricsPort !== undefined) {
      // Loaded only for --metrics-port: prom-client (with the @opentelemetry/api it imports, ~80
      // modules) would otherwise stay in the memory of every worker (test/packaging/footprint.test.ts).
      const promClient = await import('prom-client');
      const registry = new promClient.Registry();
      promClient.collectDefaultMetrics({ register: registry });
      workerMetrics(w, { registry, promClient });
      const health = workerHealth(w);
      w.done.finally(() => health.stop()).catch(() => {});
      observability = await serveObservability({ registry, health, port: metricsPort, host: flags.metricsHost }).catch(
        (e: NodeJS.ErrnoException) => {
          health.stop();
          throw new ConfigError(
            `--metrics-port ${metricsPort} on ${flags.metricsHost ?? '0.0.0.0'}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`,
            { cause: e },
          );
        },
      );
      logger.info('serving /metrics, /healthz and /readyz', { url: observability.url });
    }
    const bounded = flags.until === 'caught-up';
    const signals = handleSignals(w, logger);
    // A floating rejected promise must not end the process with its partitions still claimed.
    const failures = stopOnProcessFailure(w, logger);
    let stopProgress: ((opts?: { final?: boolean }) => void) | undefined;
    // An error no retry fixes stops the worker: no progress line after the one that says so.
    const offStopped = w.on('partition-stopped', (s) => {
      if (OncelyError.is(s.error, 'PARTITION_STOPPED')) stopProgress?.({ final: false });
    });
    try {
      await w.start();
      if (bounded && flags.progress !== false)
        stopProgress = reportProgress(() => w.progress(), { intervalMs: progressIntervalMs });
      await w.done;
      stopProgress?.();
      stopProgress = undefined;
      const progress = w.progress();
      const outcome = outcomeOf(progress);
      const interrupted = signals.received && !outcome.caughtUp ? signals.received : undefined;
      if (bounded && !signals.aborted) {
        if (flags.json)
          printJson({
            group: app.group,
            caughtUp: outcome.caughtUp,
            ...(interrupted ? { interruptedBy: interrupted } : {}),
            done: outcome.done,
            total: outcome.total,
            applied: outcome.applied,
            deadLettered: outcome.deadLettered,
            stoppedPartitions: outcome.stopped.length,
            partitions: progress,
          });
        else console.log(summaryLine(outcome, progress.length, app.group, interrupted));
      }
      logger.info('worker stopped');
      if (failures.error) return ExitCode.FAILED;
      if (signals.aborted) return ExitCode.ABORTED;
      if (!bounded || outcome.caughtUp) return ExitCode.OK;
      // A bounded run that did not catch up must not look like one that did.
      if (interrupted) return ExitCode.INTERRUPTED;
      return outcome.stopped.length > 0 ? ExitCode.STOPPED_PARTITIONS : ExitCode.INTERRUPTED;
    } catch (e) {
      // A missing topic, rejected credentials or a bad definition: the command line or the
      // environment must change, which exit 2 tells a supervisor.
      stopProgress?.({ final: false });
      stopProgress = undefined;
      if (isConfigurationError(e)) throw e;
      // The worker logged why it failed, with what to do (once): not again here.
      if (!wasLogged(e)) logger.error('worker failed', { error: (e as Error).message });
      return ExitCode.FAILED;
    } finally {
      stopProgress?.();
      offStopped();
      signals.dispose();
      failures.dispose();
    }
  } finally {
    // A started worker closes the reader and the store when it stops; closing again is a no-op.
    await reader?.close().catch(() => {});
    await store.close().catch(() => {});
    // After the worker: its last commits are mirrored before the process exits.
    await mirror?.close().catch(() => {});
    await observability?.close().catch(() => {});
  }
}

/** The flags of `oncely run` (besides the connection flags). */
export const RUN_FLAGS: readonly FlagSpec[] = [
  { flags: '--partitions <selector>', description: 'static assignment, e.g. "payments:0-3,orders:*" (makes the worker static)' },
  { flags: '--worker <i/n>', description: 'deterministic split: this is worker i of n (makes the worker static)' },
  {
    flags: '--membership <kind>',
    description:
      'elastic: shared with the live workers of the group; static: the partitions listed (or all). ' +
      'Default: elastic, or static with --partitions, --worker, --on-held, --force or --until caught-up',
    choices: ['static', 'elastic'],
  },
  {
    flags: '--force',
    description: 'static: take the listed partitions even from live workers (logged, audited): always typed',
    env: false,
  },
  {
    flags: '--on-held <what>',
    description: 'static: a listed partition that a live worker holds at start',
    choices: ['wait', 'fail'],
  },
  { flags: '--max-partitions <n>', description: 'elastic: the most partitions this worker takes' },
  { flags: '--weight <n>', description: "elastic: this worker's share relative to the others' (1-1000, default 1)" },
  { flags: '--heartbeat-interval <ms>', description: 'lease renewal, heartbeat and re-balance interval (default 3000)' },
  { flags: '--session-timeout <ms>', description: 'elastic: a worker silent this long is dead (default 15000)' },
  { flags: '--partition-refresh <ms>', description: 'how often the topics are listed again for new partitions (default 30000)' },
  { flags: '--worker-id <id>', description: 'identity in claims and the offset log (default: host-pid-random)' },
  {
    flags: '--initial-offset <where>',
    description: 'start of partitions never seen: earliest | latest | ISO date-time',
    default: 'earliest',
  },
  {
    flags: '--offset-out-of-range <policy>',
    description: 'when retention deleted the stored offset',
    choices: ['fail', 'earliest', 'latest'],
    default: 'fail',
  },
  { flags: '--batch-max-records <n>', description: 'records per transaction (default 2000)' },
  { flags: '--batch-max-bytes <n>', description: 'key+value bytes per transaction (default 4194304)' },
  { flags: '--batch-linger <ms>', description: 'longest wait for more records when a batch is not full (default 0)' },
  { flags: '--fetch-max-wait <ms>', description: 'broker long-poll wait when no partition has data (default 500)' },
  { flags: '--fetch-max-bytes-per-partition <n>', description: 'bytes per partition per fetch (default 262144)' },
  { flags: '--lease <ms>', description: "lease of a claim: how long a dead worker's partitions wait (default 15000)" },
  { flags: '--pool-size <n>', description: 'PostgreSQL connections of the pool (default 10)' },
  { flags: '--lock-timeout <ms>', description: 'lock_timeout of every transaction (default 5000)' },
  {
    flags: '--idle-in-transaction-timeout <ms>',
    description: 'a batch idle this long between two statements (a frozen process) is ended by PostgreSQL (default 30000, 0 off)',
  },
  { flags: '--drain-timeout <ms>', description: 'how long a stop waits for in-flight transactions (default 20000)' },
  {
    flags: '--slow-batch-warning <ms>',
    description: 'log a batch whose handler has not settled after this long, then once a minute (default 60000; 0: off)',
  },
  { flags: '--retry-attempts <n>', description: 'tries of a failing record before --on-exhausted (default 5)' },
  { flags: '--retry-initial-delay <ms>', description: 'first retry delay; doubles up to --retry-max-delay (default 250)' },
  { flags: '--retry-max-delay <ms>', description: 'longest retry delay (default 30000)' },
  {
    flags: '--on-exhausted <what>',
    description: 'when a record has used its retries',
    choices: ['dead-letter', 'stop-partition'],
    default: 'dead-letter',
  },
  {
    flags: '--crash-budget <n>',
    description: 'process deaths in a row while one record was applied alone before --on-crash-loop acts (default 5)',
  },
  {
    flags: '--on-crash-loop <what>',
    description: 'what happens to a record that kills the process',
    choices: ['stop-partition', 'dead-letter'],
    default: 'stop-partition',
  },
  {
    flags: '--max-consecutive-dead-letters <n>',
    description: 'dead letters in a row on a partition that stop it: the circuit breaker (default 10; 0: off)',
  },
  {
    flags: '--start-timeout <ms>',
    description:
      'how long start-up waits for an unavailable database or broker, or a locked partition row (default 300000; 0: forever)',
  },
  {
    flags: '--until <when>',
    description: 'forever, or caught-up: stop at the high watermarks taken at start',
    choices: ['forever', 'caught-up'],
    default: 'forever',
  },
  { flags: '--no-progress', description: 'no progress bar/lines for --until caught-up' },
  { flags: '--progress-interval <ms>', description: 'progress redraw interval (default 250 on a TTY, 2000 otherwise)' },
  {
    flags: '--mirror-group-id <id>',
    description: "mirror positions into this Kafka group's offsets after commits (for lag tools)",
  },
  {
    flags: '--metrics-port <port>',
    description: 'serve Prometheus /metrics and the /healthz and /readyz probes on this port (0: any free port)',
  },
  { flags: '--metrics-host <host>', description: 'address of the --metrics-port server', default: '0.0.0.0' },
  { flags: '--json', description: 'with --until caught-up: a JSON summary on stdout' },
  { flags: '--log-level <level>', description: 'log level', choices: ['debug', 'info', 'warn', 'error'], default: 'info' },
  {
    flags: '--log-format <format>',
    description: 'log lines on stderr: json (one event per line), logfmt, or auto (json unless stderr is a terminal)',
    choices: LOG_FORMATS,
    default: 'auto',
  },
  { flags: '--no-migrate', description: 'do not apply migrations at start' },
];

/** Registers `oncely run`. */
export function registerRun(program: Command, setCode: (code: number) => void): void {
  const cmd = program
    .command('run')
    .description('Run a worker for an app module (default export or `app` from defineApp) until SIGTERM/SIGINT')
    .argument('[app-module]', 'path to the app module (.js, or .ts under tsx) [env: ONCELY_APP]');
  // ONCELY_APP fills the argument; a hidden --app carries it through the environment layer.
  flag(cmd, { flags: '--app <module>', description: 'the app module (instead of the argument)', hidden: true });
  addFlags(cmd, RUN_FLAGS);
  connectionOptions(cmd).action(async (modulePath: string | undefined, flags: RunFlags) =>
    setCode(await runCommand(modulePath, flags)),
  );
}
