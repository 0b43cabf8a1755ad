import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import { type PartitionSelection, parsePartitionSelector, parseWorkerSplit } from '../membership/static.js';
import { type CompiledRetryPolicy, MAX_TIMER_MS } from '../policy/retry-policy.js';
import type { OffsetSpec, PartitionReader } from '../reader/types.js';
import type { TransactionalStore } from '../store/types.js';

/** Options of `createWorker`. Every option is validated once; a bad one names itself and the fix. */
export interface WorkerOptions<Tx> {
  /** Where positions live and the transaction each batch runs in (e.g. `new PostgresStore(...)`). */
  store: TransactionalStore<Tx>;
  /** Reads Kafka at explicit offsets (e.g. `new KafkajsPartitionReader({ brokers })`). */
  reader: PartitionReader;
  /** This worker's identity in claims and the offset log. Default `<host>-<pid>-<random>`. */
  workerId?: string;
  /**
   * Static assignment: which partitions this worker owns, e.g. `'payments:0-3,orders:*'`.
   * Default: every partition of every topic the app handles (combined with `split` if given).
   */
  partitions?: string;
  /** Deterministic split `'i/n'`: this worker takes every n-th partition, starting at the i-th (1-based). */
  split?: string;
  /** Where a partition never seen by this group starts. Default `'earliest'`. */
  initialOffset?: OffsetSpec;
  /**
   * What to do when the stored offset is no longer in the log (retention deleted the records):
   * `'fail'` (default) stops the worker with OffsetOutOfRangeError; `'earliest'` / `'latest'`
   * move there, log a warning and count it. Never a silent jump.
   */
  offsetOutOfRange?: 'fail' | 'earliest' | 'latest';
  /**
   * Largest number of records in one transaction. Default 2000: measured with `pnpm bench`, 2000
   * against 500 gave batch handlers +25–70% (fewer BEGIN/COMMIT round trips and fsyncs per record).
   */
  batchMaxRecords?: number;
  /** Largest sum of key+value bytes in one transaction. Default 4 MiB. */
  batchMaxBytes?: number;
  /** Longest wait for more records when a batch is not full, in ms. Default 0 (take what the fetch gave). */
  batchLingerMs?: number;
  /** Broker long-poll wait when no partition has data, in ms. Default 500. */
  fetchMaxWaitMs?: number;
  /**
   * Bytes per partition per fetch (the broker still returns one larger record batch whole). Default
   * 256 KiB: with two fetches queued per partition, 1 MiB made a worker draining a 1M-record backlog
   * peak at ~370 MB RSS against ~235 MB, at the same throughput (`pnpm bench`).
   */
  fetchMaxBytesPerPartition?: number;
  /**
   * How this worker decides its partitions. `'static'`: the partitions `partitions`/`split` name
   * (all of them when neither is given). `'elastic'`: the group's live workers share the partitions
   * among themselves, re-balancing as workers join, stop or die (needs a store with heartbeats,
   * such as PostgresStore). Default: `'elastic'`, unless the worker is given a static assignment
   * (`partitions`, `split`, `onHeld` or `force`), a bounded run (`until: 'caught-up'`) or a store
   * without `heartbeat()`: then `'static'`. The worker logs which it chose and why.
   */
  membership?: 'static' | 'elastic';
  /**
   * How long a claim holds without a commit or renewal, in ms: after an unclean death, how long its
   * partitions wait before another worker may take them. Renewed every heartbeatIntervalMs.
   * Default 15 000.
   */
  leaseMs?: number;
  /**
   * How often the worker renews its leases (one statement for all its partitions), writes its
   * heartbeat and re-checks its target, in ms. At most a third of leaseMs and of sessionTimeoutMs,
   * so that two missed heartbeats lose nothing. Default 3 000, or a third of the shorter of the
   * two when that is less.
   */
  heartbeatIntervalMs?: number;
  /**
   * Elastic membership: a worker whose last heartbeat is older than this (by the database's clock)
   * is dead, and the others re-balance without it. Default 15 000.
   */
  sessionTimeoutMs?: number;
  /** Elastic membership: the most partitions this worker takes (the others respect it). Default: no cap. */
  maxPartitions?: number;
  /**
   * Elastic membership: this worker's share relative to the others' (an integer from 1 to 1000):
   * the group's partitions are shared in proportion to the weights (within the caps), so a worker
   * of weight 3 takes three times the partitions of one of weight 1. Default 1.
   */
  weight?: number;
  /**
   * Static membership: a listed partition that another live worker holds at start is waited for
   * (`'wait'`, default: taken once released or its lease expires) or fails the start (`'fail'`).
   */
  onHeld?: 'wait' | 'fail';
  /**
   * Static membership: take the listed partitions at start even from live holders, which are fenced
   * (an operator's deliberate takeover; logged and recorded in admin_audit). Default false.
   */
  force?: boolean;
  /** How often the topics' partitions are listed again, so that new ones are picked up, in ms. Default 30 000. */
  partitionRefreshMs?: number;
  /** Tries of a failing record before `onExhausted` (handlers may override with `retry`). Default 5. */
  retryAttempts?: number;
  /** When a record's retries are spent: dead-letter it (default) or stop its partition. */
  onExhausted?: 'dead-letter' | 'stop-partition';
  /**
   * How many consecutive deaths of the worker process while one record was applied alone (nothing
   * else in flight in the worker) make that record the cause, after which `onCrashLoop`
   * acts without running its handler again. A record is never blamed for a death it shared with
   * others: after an unclean hand-over the range in flight is charged as a unit, and only a range
   * in flight at repeated deaths is narrowed down to one record. Default 5.
   */
  crashBudget?: number;
  /**
   * What happens to a record found to kill the process (see crashBudget): `'stop-partition'`
   * (default) stops its partition with WorkerCrashedError (code CRASH_LOOP; the others go on, the
   * record is not skipped); `'dead-letter'` writes it to the dead letters and moves on.
   */
  onCrashLoop?: 'stop-partition' | 'dead-letter';
  /**
   * The circuit breaker: this many dead letters in a row on one partition, with no record applied
   * in between, stop that partition with CircuitOpenError (code CIRCUIT_OPEN): a handler that
   * fails on every record does not drain the topic into the dead letters. 0 turns it off; handlers
   * may override it (`retry.maxConsecutiveDeadLetters`). Default 10.
   */
  maxConsecutiveDeadLetters?: number;
  /** First retry delay of a failing record or batch, in ms; doubles up to retryMaxDelayMs. Default 250. */
  retryInitialDelayMs?: number;
  /** Longest retry delay, in ms. Default 30 000. */
  retryMaxDelayMs?: number;
  /**
   * How long `stop()` lets in-flight batches finish before aborting them, in ms. Default 20 000:
   * below Kubernetes' default 30 s termination grace period, leaving time to release the claims.
   * Above 25 000 a warning says which terminationGracePeriodSeconds the pod needs.
   */
  drainTimeoutMs?: number;
  /**
   * A batch whose handler has not settled after this many ms is reported: a warn line naming the
   * batch and the record it is at, an error line once a minute while it lasts, an info line when
   * it settles; `progress()[i].batchRunningMs` and the `oncely_batch_running_seconds` metric show
   * it all along. A handler awaiting something that never answers would otherwise hold its
   * partition in silence. Only a report: the batch is not cut short. 0 turns the lines off.
   * Default 60 000.
   */
  slowBatchWarningMs?: number;
  /** Whether `stop()` also closes the reader and the store. Default true. */
  closeOnStop?: boolean;
  /**
   * How long `start()` waits out an unavailable database or broker, or a partition row locked by
   * another transaction, before it fails (with back-off, one log line per change of what it waits
   * for), in ms; 0 waits forever. Default 300 000 (5 min). Failures no wait can fix (configuration,
   * credentials, an unknown topic, a schema too new) fail at once.
   */
  startTimeoutMs?: number;
  /**
   * Runs first in `start()`, inside the start-up wait: what must succeed before partitions are
   * claimed, e.g. `() => store.migrate()`. A transient failure (the database still down) is waited
   * out like the rest of start-up. Default: nothing.
   */
  prepare?: () => Promise<unknown>;
  /**
   * `'forever'` (default) runs until stopped. `'caught-up'` is a bounded run: the high watermark of
   * every owned partition is taken at start, and the worker stops by itself once every partition
   * has applied up to it (records written later are left for the next run).
   */
  until?: 'forever' | 'caught-up';
  /** Logger. Default: logfmt lines on stderr at ONCELY_LOG_LEVEL (info). */
  logger?: Logger;
}

/** Options after validation, with defaults applied. Frozen. */
export interface CompiledWorkerOptions<Tx> {
  readonly store: TransactionalStore<Tx>;
  readonly reader: PartitionReader;
  readonly workerId: string;
  readonly selection: PartitionSelection | undefined;
  readonly split: { index: number; count: number } | undefined;
  readonly initialOffset: OffsetSpec;
  readonly offsetOutOfRange: 'fail' | 'earliest' | 'latest';
  readonly batchMaxRecords: number;
  readonly batchMaxBytes: number;
  readonly batchLingerMs: number;
  readonly fetchMaxWaitMs: number;
  readonly fetchMaxBytesPerPartition: number;
  readonly membership: 'static' | 'elastic';
  /** Why the worker has this membership (asked for, the default, or what made it static), as logged at creation. */
  readonly membershipReason: string;
  readonly leaseMs: number;
  readonly heartbeatIntervalMs: number;
  readonly sessionTimeoutMs: number;
  readonly maxPartitions: number | undefined;
  readonly weight: number | undefined;
  readonly onHeld: 'wait' | 'fail';
  readonly force: boolean;
  readonly partitionRefreshMs: number;
  /** The worker's retry policy (retryAttempts, retryInitialDelayMs, retryMaxDelayMs, onExhausted); handlers override it. */
  readonly retry: CompiledRetryPolicy;
  readonly crashBudget: number;
  readonly onCrashLoop: 'stop-partition' | 'dead-letter';
  readonly drainTimeoutMs: number;
  readonly slowBatchWarningMs: number;
  readonly closeOnStop: boolean;
  readonly startTimeoutMs: number;
  readonly prepare: (() => Promise<unknown>) | undefined;
  readonly until: 'forever' | 'caught-up';
  readonly logger: Logger;
}

function int(name: string, value: unknown, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`Worker option ${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Kubernetes' default terminationGracePeriodSeconds: SIGTERM, then SIGKILL 30 s later. A stop
 * takes up to drainTimeoutMs for the in-flight batches, then releases the claims (one statement
 * each) and closes the connections: STOP_MARGIN_MS is left for that. The default drain (20 s) fits.
 */
const KUBERNETES_GRACE_MS = 30_000;
const STOP_MARGIN_MS = 5_000;

/** The option (and its `oncely run` flag) that makes an unset membership static. */
const STATIC_BECAUSE = {
  partitions: 'partitions (--partitions) names a static assignment',
  split: 'split (--worker i/n) names a static assignment',
  onHeld: 'onHeld (--on-held) belongs to static membership',
  force: 'force (--force) belongs to static membership',
} as const;

/**
 * The membership of a worker whose options leave it unset, and why: elastic unless something
 * says static (an assignment, a bounded run of the partitions at start, a store without heartbeats).
 */
function defaultMembership<Tx>(
  o: WorkerOptions<Tx>,
  staticOnly: ReadonlyArray<keyof typeof STATIC_BECAUSE>,
): { kind: 'static' | 'elastic'; reason: string } {
  const first = staticOnly[0];
  if (first !== undefined) return { kind: 'static', reason: STATIC_BECAUSE[first] };
  if (o.until === 'caught-up') {
    return { kind: 'static', reason: "until: 'caught-up' (--until caught-up) is a bounded run of the partitions taken at start" };
  }
  if (typeof o.store.heartbeat !== 'function') {
    return { kind: 'static', reason: 'the store keeps no heartbeats (it has no heartbeat()), which elastic membership needs' };
  }
  return {
    kind: 'elastic',
    reason:
      "the default: no static assignment was given and the store keeps heartbeats, so the group's live workers share " +
      "its partitions (membership: 'static' or --membership static for a fixed list)",
  };
}

/** The membership options, checked against each other and against the store. */
function compileMembership<Tx>(o: WorkerOptions<Tx>): {
  kind: 'static' | 'elastic';
  reason: string;
  maxPartitions: number | undefined;
  weight: number | undefined;
  onHeld: 'wait' | 'fail';
  force: boolean;
} {
  const staticOnly = (['partitions', 'split', 'onHeld', 'force'] as const).filter((k) => o[k] !== undefined);
  // Unset: elastic, unless an option or the store says static (a list, a bounded run, no heartbeats).
  const { kind, reason } =
    o.membership === undefined
      ? defaultMembership(o, staticOnly)
      : { kind: o.membership, reason: `asked for (membership: '${o.membership}', --membership ${o.membership})` };
  if (kind !== 'static' && kind !== 'elastic') {
    throw new ConfigError(`Worker option membership must be 'static' or 'elastic'; got ${JSON.stringify(o.membership)}`);
  }
  if (o.onHeld !== undefined && o.onHeld !== 'wait' && o.onHeld !== 'fail') {
    throw new ConfigError(`Worker option onHeld must be 'wait' or 'fail'; got ${JSON.stringify(o.onHeld)}`);
  }
  if (o.force !== undefined && typeof o.force !== 'boolean') {
    throw new ConfigError(`Worker option force must be a boolean; got ${JSON.stringify(o.force)}`);
  }
  const maxPartitions = o.maxPartitions === undefined ? undefined : int('maxPartitions', o.maxPartitions, 0, 1);
  const weight = o.weight === undefined ? undefined : int('weight', o.weight, 1, 1, 1000);
  if (kind === 'elastic') {
    if (staticOnly.length > 0) {
      throw new ConfigError(
        `Worker option${staticOnly.length > 1 ? 's' : ''} ${staticOnly.join(', ')} belong${staticOnly.length > 1 ? '' : 's'} to ` +
          "static membership; with membership: 'elastic' the live workers share the partitions among themselves",
      );
    }
    if (o.until === 'caught-up') {
      throw new ConfigError("Worker option until: 'caught-up' (a bounded run) needs membership: 'static'");
    }
    if (typeof o.store.heartbeat !== 'function') {
      throw new ConfigError(
        "membership: 'elastic' needs a store that keeps heartbeats (store.heartbeat(), as PostgresStore has); " +
          "use membership: 'static' with this store",
      );
    }
  } else if (maxPartitions !== undefined) {
    throw new ConfigError("Worker option maxPartitions belongs to membership: 'elastic'");
  } else if (weight !== undefined) {
    throw new ConfigError("Worker option weight belongs to membership: 'elastic'");
  }
  return { kind, reason, maxPartitions, weight, onHeld: o.onHeld ?? 'wait', force: o.force ?? false };
}

/** Validates options once into a frozen object with defaults (Temporal's compileWorkerOptions). */
export function compileWorkerOptions<Tx>(o: WorkerOptions<Tx>): CompiledWorkerOptions<Tx> {
  if (!o || typeof o !== 'object')
    throw new ConfigError('createWorker(app, options): options are required ({ store, reader, ... })');
  if (!o.store || typeof o.store.runBatch !== 'function' || typeof o.store.claim !== 'function') {
    throw new ConfigError(
      'Worker option store is required: a TransactionalStore such as new PostgresStore({ connectionString })',
    );
  }
  if (!o.reader || typeof o.reader.fetch !== 'function') {
    throw new ConfigError('Worker option reader is required: a PartitionReader such as new KafkajsPartitionReader({ brokers })');
  }
  const initialOffset = o.initialOffset ?? 'earliest';
  if (
    initialOffset !== 'earliest' &&
    initialOffset !== 'latest' &&
    !(typeof initialOffset === 'object' && Number.isFinite(initialOffset.timestamp))
  ) {
    throw new ConfigError(
      `Worker option initialOffset must be 'earliest', 'latest' or { timestamp: ms }; got ${JSON.stringify(initialOffset)}`,
    );
  }
  const oor = o.offsetOutOfRange ?? 'fail';
  if (!['fail', 'earliest', 'latest'].includes(oor)) {
    throw new ConfigError(`Worker option offsetOutOfRange must be 'fail', 'earliest' or 'latest'; got ${JSON.stringify(oor)}`);
  }
  if (o.until !== undefined && o.until !== 'forever' && o.until !== 'caught-up') {
    throw new ConfigError(`Worker option until must be 'forever' or 'caught-up'; got ${JSON.stringify(o.until)}`);
  }
  if (o.onExhausted !== undefined && o.onExhausted !== 'dead-letter' && o.onExhausted !== 'stop-partition') {
    throw new ConfigError(
      `Worker option onExhausted must be 'dead-letter' or 'stop-partition'; got ${JSON.stringify(o.onExhausted)}`,
    );
  }
  if (o.onCrashLoop !== undefined && o.onCrashLoop !== 'dead-letter' && o.onCrashLoop !== 'stop-partition') {
    throw new ConfigError(
      `Worker option onCrashLoop must be 'stop-partition' or 'dead-letter'; got ${JSON.stringify(o.onCrashLoop)}`,
    );
  }
  const membership = compileMembership(o);
  const leaseMs = int('leaseMs', o.leaseMs, 15_000, 1_000, MAX_TIMER_MS);
  const sessionTimeoutMs = int('sessionTimeoutMs', o.sessionTimeoutMs, 15_000, 1_000, MAX_TIMER_MS);
  // Unset, it follows a short lease or session timeout down (a third of the shorter).
  const heartbeatIntervalMs = int(
    'heartbeatIntervalMs',
    o.heartbeatIntervalMs,
    Math.max(100, Math.min(3_000, Math.floor(Math.min(leaseMs, sessionTimeoutMs) / 3))),
    100,
    MAX_TIMER_MS,
  );
  for (const [name, value] of [
    ['leaseMs', leaseMs],
    ['sessionTimeoutMs', sessionTimeoutMs],
  ] as const) {
    if (heartbeatIntervalMs * 3 > value) {
      throw new ConfigError(
        `Worker option heartbeatIntervalMs (${heartbeatIntervalMs}) must be at most a third of ${name} (${value}), so that ` +
          `two missed heartbeats lose nothing: lower heartbeatIntervalMs or raise ${name}`,
      );
    }
  }
  const retryInitialDelayMs = int('retryInitialDelayMs', o.retryInitialDelayMs, 250, 0, MAX_TIMER_MS);
  const retryMaxDelayMs = int('retryMaxDelayMs', o.retryMaxDelayMs, 30_000, 0, MAX_TIMER_MS);
  if (retryMaxDelayMs < retryInitialDelayMs) {
    throw new ConfigError(
      `Worker option retryMaxDelayMs (${retryMaxDelayMs}) must not be below retryInitialDelayMs (${retryInitialDelayMs})`,
    );
  }
  const workerId = o.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  if (typeof workerId !== 'string' || workerId.length === 0 || workerId.length > 200) {
    throw new ConfigError('Worker option workerId must be a non-empty string of at most 200 characters');
  }
  if (o.prepare !== undefined && typeof o.prepare !== 'function') {
    throw new ConfigError('Worker option prepare must be a function returning a promise, e.g. () => store.migrate()');
  }
  const logger = o.logger ?? consoleLogger();
  const drainTimeoutMs = int('drainTimeoutMs', o.drainTimeoutMs, 20_000, 0, MAX_TIMER_MS);
  if (drainTimeoutMs + STOP_MARGIN_MS > KUBERNETES_GRACE_MS) {
    // Not an error: a pod may have a longer grace period. With the default one, the kubelet's
    // SIGKILL would cut the drain short and the partitions would wait out their leases.
    logger.warn(
      `Worker option drainTimeoutMs (${drainTimeoutMs}) leaves less than ${STOP_MARGIN_MS / 1000} s of Kubernetes' default ` +
        `termination grace period (30 s) to release the claims: give the pod terminationGracePeriodSeconds of at least ` +
        `${Math.ceil((drainTimeoutMs + STOP_MARGIN_MS) / 1000)}, or lower drainTimeoutMs (--drain-timeout)`,
      { drainTimeoutMs },
    );
  }
  const workerLogger = logger.child({ worker: workerId });
  workerLogger.info(`membership ${membership.kind}: ${membership.reason}`, { membership: membership.kind });
  return Object.freeze({
    store: o.store,
    reader: o.reader,
    workerId,
    selection: o.partitions === undefined ? undefined : parsePartitionSelector(o.partitions),
    split: o.split === undefined ? undefined : parseWorkerSplit(o.split),
    initialOffset,
    offsetOutOfRange: oor,
    batchMaxRecords: int('batchMaxRecords', o.batchMaxRecords, 2000, 1, 1_000_000),
    batchMaxBytes: int('batchMaxBytes', o.batchMaxBytes, 4 * 1024 * 1024, 1),
    batchLingerMs: int('batchLingerMs', o.batchLingerMs, 0, 0, 60_000),
    fetchMaxWaitMs: int('fetchMaxWaitMs', o.fetchMaxWaitMs, 500, 0, 60_000),
    fetchMaxBytesPerPartition: int('fetchMaxBytesPerPartition', o.fetchMaxBytesPerPartition, 256 * 1024, 1024),
    membership: membership.kind,
    membershipReason: membership.reason,
    leaseMs,
    heartbeatIntervalMs,
    sessionTimeoutMs,
    maxPartitions: membership.maxPartitions,
    weight: membership.weight,
    onHeld: membership.onHeld,
    force: membership.force,
    partitionRefreshMs: int('partitionRefreshMs', o.partitionRefreshMs, 30_000, 100, MAX_TIMER_MS),
    retry: Object.freeze({
      attempts: int('retryAttempts', o.retryAttempts, 5, 1, 1_000_000),
      maxElapsedMs: undefined,
      initialDelayMs: retryInitialDelayMs,
      maxDelayMs: retryMaxDelayMs,
      onExhausted: o.onExhausted ?? 'dead-letter',
      maxConsecutiveDeadLetters: int('maxConsecutiveDeadLetters', o.maxConsecutiveDeadLetters, 10, 0, 1_000_000),
    }),
    crashBudget: int('crashBudget', o.crashBudget, 5, 1, 1_000_000),
    onCrashLoop: o.onCrashLoop ?? 'stop-partition',
    drainTimeoutMs,
    slowBatchWarningMs: int('slowBatchWarningMs', o.slowBatchWarningMs, 60_000, 0, MAX_TIMER_MS),
    closeOnStop: o.closeOnStop ?? true,
    startTimeoutMs: int('startTimeoutMs', o.startTimeoutMs, 300_000, 0, MAX_TIMER_MS),
    prepare: o.prepare,
    until: o.until ?? 'forever',
    logger: workerLogger,
  });
}
