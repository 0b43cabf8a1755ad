import {
  AbortedError,
  type BatchRange,
  type Claim,
  type ClaimInput,
  ConfigError,
  type CrashEvidence,
  consoleLogger,
  type ErrorClass,
  FencedError,
  type HeartbeatOptions,
  type LiveWorker,
  type Logger,
  type OffsetRange,
  PartitionHeldError,
  type PartitionKey,
  type PartitionState,
  pgText,
  RepeatGate,
  type RunBatchOptions,
  StateError,
  type TransactionalStore,
  TransactionEndedError,
  type WorkerHeartbeat,
} from '@oncely/core';
import createKnex, { type Knex } from 'knex';
import { defaultActor } from '../actor.js';
import { classifyPgError, isConnectionError, mapStoreError, pgRemedy, redact } from '../errors.js';
import { assertMigrated, type MigrateResult, migrate } from '../migrations/index.js';
import { type CompiledStoreOptions, compileStoreOptions, type PostgresStoreOptions } from '../options.js';
import { type OffsetLogEntry, type OffsetLogQuery, type PartitionPosition, readOffsetLog, readPositions } from '../read/index.js';
import { appliedRangesSql } from '../sql/applied-ranges.js';
import { type ClaimRow, claimSql, recordInFlightSql } from '../sql/claim.js';
import { deadLettersJson } from '../sql/dead-letters-json.js';
import { releaseSql } from '../sql/release.js';
import { renewSql } from '../sql/renew.js';
import { decodeWorker, type Rows } from '../sql/rows.js';
import {
  BATCH_OPEN,
  type BatchCommitParams,
  batchBeginSql,
  batchCommitMergedSql,
  batchCommitSql,
  batchCommitUnfencedSql,
  batchStartSql,
  batchStartUnfencedSql,
  boundNames,
  ENDED_SQLSTATE,
  FENCED_SQLSTATE,
  IDLE_TIMEOUT,
  STILL_OPEN,
} from '../sql/run-batch.js';
import {
  type InlinedStatement,
  inlined,
  type PositionalStatement,
  positional,
  query,
  queryInTransaction,
} from '../sql/statement.js';
import { markStoppedSql } from '../sql/stop.js';
import { heartbeatSql, leaveSql } from '../sql/workers.js';
import { type EndingCall, guardTransaction } from './guarded-transaction.js';
import { type ErrorEmitter, IdleWatch, idleEndedError, transactionKeepingError } from './transaction-errors.js';

/**
 * The longest a claim waits for its partition's row lock (capped by lockTimeoutMs). The row is
 * locked only by a statement in progress, or by a transaction between its compare-and-set and
 * COMMIT: normally for milliseconds, for as long as it is frozen when its process is.
 */
const CLAIM_LOCK_TIMEOUT_MS = 1000;

/** How long the store's own pool waits for PostgreSQL to accept a new connection (TCP, TLS, authentication). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * knex's own log, through the store's logger: knex warns `Connection Error: Connection ended
 * unexpectedly` for every pooled connection an outage killed, with console.warn by default (raw
 * lines outside the log format). Each message is logged once per change, repeats counted.
 */
function knexLog(logger: Logger, gate: RepeatGate) {
  const say = (level: 'warn' | 'error', raw: unknown) => {
    const text = redact(String(raw));
    // The acquire failure itself surfaces as the operation's error (StoreUnavailableError).
    if (/Acquire connection error/.test(text)) return;
    const lost = /^Connection Error: (.*)$/s.exec(text);
    const line = lost ? `PostgreSQL connection lost (${lost[1]}); the pool opens a new one` : `knex: ${text}`;
    if (gate.pass(`${level} ${line}`, (n) => logger[level](`${line} (${n} repeats suppressed)`))) logger[level](line);
  };
  return {
    warn: (m: unknown) => say('warn', m),
    error: (m: unknown) => say('error', m),
    deprecate: (method: string, alternative: string) => logger.warn(`knex: ${method} is deprecated, use ${alternative}`),
    debug: () => {},
  };
}

const key = (p: PartitionKey): string => JSON.stringify([p.group, p.topic, p.partition]);

/** What every statement on a claim's row checks: the row's key, its epoch and its owner. */
function fenceOf(claim: Claim) {
  return {
    group: claim.group,
    topic: claim.topic,
    partition: claim.partition,
    epoch: claim.epoch.toString(),
    owner: claim.workerId,
  };
}

function checkKey(what: string, p: PartitionKey): void {
  if (typeof p.group !== 'string' || p.group.length === 0) throw new ConfigError(`${what}: group must be a non-empty string.`);
  if (typeof p.topic !== 'string' || p.topic.length === 0) throw new ConfigError(`${what}: topic must be a non-empty string.`);
  if (!Number.isInteger(p.partition) || p.partition < 0 || p.partition > 2_147_483_647) {
    throw new ConfigError(`${what}: partition must be a non-negative integer; got ${p.partition}.`);
  }
}

/** A goneGraceMs option as the statements bind it (null: not used). */
function graceOf(what: string, ms: number | undefined): number | null {
  if (ms === undefined) return null;
  if (!Number.isInteger(ms) || ms < 0 || ms > 2_147_483_647)
    throw new ConfigError(`${what}: goneGraceMs must be a non-negative integer of milliseconds; got ${ms}.`);
  return ms;
}

function checkLease(what: string, leaseMs: number): void {
  if (!Number.isInteger(leaseMs) || leaseMs < 1 || leaseMs > 2_147_483_647) {
    throw new ConfigError(`${what}: leaseMs must be a positive integer of milliseconds; got ${leaseMs}.`);
  }
}

/**
 * The PostgreSQL implementation of core's TransactionalStore: positions, claims and epochs in
 * `<schema>.partitions`, every batch committed with a compare-and-set of its position in the same
 * transaction as the handler's writes. Handlers write through the `Knex.Transaction` they are given.
 *
 * Hot-path statements (claim, runBatch, renew, release) are hand-written SQL in `src/sql/`, one
 * round trip each. runBatch takes two besides the handler's statements: BEGIN with the start
 * statement, and the commit statement with COMMIT, each pair one simple query whose texts are built
 * once (src/sql/run-batch.ts).
 */
export class PostgresStore implements TransactionalStore<Knex.Transaction> {
  /** The validated options, defaults applied (no secret in it). */
  readonly options: CompiledStoreOptions;
  /** The knex instance: yours if you passed one, else the store's own pool. Use it for your own reads. */
  readonly knex: Knex;
  readonly #sql: {
    claim: ReturnType<typeof claimSql>;
    renew: ReturnType<typeof renewSql>;
    release: ReturnType<typeof releaseSql>;
    markStopped: ReturnType<typeof markStoppedSql>;
    /** BEGIN, the start statement and the commit's values stored: one simple query, its values inlined. */
    batchBegin: InlinedStatement<BatchCommitParams & { lockTimeout: string; idleTimeout: string }>;
    /** The commit statement with its values bound, sent on its own: a batch with dead letters. */
    batchCommit: PositionalStatement<BatchCommitParams, { updated: number; open: boolean }>;
    /** The commit statement, the check that it matched, and COMMIT: one simple query, the same text every batch. */
    batchCommitMerged: string;
    recordInFlight: ReturnType<typeof recordInFlightSql>;
    appliedRanges: ReturnType<typeof appliedRangesSql>;
    heartbeat: ReturnType<typeof heartbeatSql>;
    leave: ReturnType<typeof leaveSql>;
  };
  /** Who a forced takeover is audited as. */
  readonly #actor = defaultActor();
  readonly #lockTimeout: string;
  /** The lock_timeout of a transaction that runs a handler: see {@link #handlerLockTimeout}. */
  #handlerLockTimeout: Promise<string> | undefined;
  readonly #logger: Logger;
  readonly #idleTimeout: string;
  /**
   * A claim's lock wait: a claim whose row another transaction holds (a commit in progress, or a
   * process frozen inside one) gives up quickly and is tried again next round, so that one locked
   * row never stalls a membership round past a heartbeat or a lease.
   */
  readonly #claimLockTimeout: string;
  /** The pool's repeated warnings: one line per change (flushed at close). */
  readonly #logGate = new RepeatGate();
  #closing: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    this.options = compileStoreOptions(options);
    this.#logger = options.logger ?? consoleLogger();
    const { quotedSchema: s, poolMax, applicationName, lockTimeoutMs } = this.options;
    this.knex =
      options.knex ??
      createKnex({
        client: 'pg',
        connection: {
          connectionString: options.connectionString,
          application_name: applicationName,
          // A server that accepts the TCP connection and never answers (a wrong port, a proxy
          // without its backend) would otherwise hold the connect, and the process, for ever.
          connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        },
        pool: { min: 0, max: poolMax },
        log: knexLog(this.#logger, this.#logGate),
      });
    // Statement texts are built once from the validated schema; everything else is a bound value.
    const unfenced = this.options.unsafeUnfencedCommitsForBenchmarks === true;
    const commit = unfenced ? batchCommitUnfencedSql(s) : batchCommitSql(s);
    this.#sql = {
      claim: claimSql(s),
      recordInFlight: recordInFlightSql(s),
      appliedRanges: appliedRangesSql(s),
      renew: renewSql(s),
      release: releaseSql(s),
      markStopped: markStoppedSql(s),
      heartbeat: heartbeatSql(s),
      leave: leaveSql(s),
      // Every batch runs these: built once from the schema.
      batchBegin: inlined(batchBeginSql(unfenced ? batchStartUnfencedSql() : batchStartSql(s), boundNames(commit))),
      batchCommit: positional(commit),
      batchCommitMerged: batchCommitMergedSql(s, !unfenced),
    };
    this.#lockTimeout = String(lockTimeoutMs);
    this.#idleTimeout = String(this.options.idleInTransactionTimeoutMs);
    this.#claimLockTimeout = String(Math.min(lockTimeoutMs, CLAIM_LOCK_TIMEOUT_MS));
    if (this.options.unsafeUnfencedCommitsForBenchmarks) {
      process.emitWarning('PostgresStore: unsafeUnfencedCommitsForBenchmarks is on; commits are NOT fenced (benchmarks only).', {
        code: 'ONCELY_UNFENCED_COMMITS',
      });
    }
  }

  /** Creates or upgrades the schema; safe to call from many workers at once. Throws SchemaTooNewError for a newer schema. */
  async migrate(): Promise<MigrateResult> {
    this.#assertOpen('migrate');
    try {
      return await migrate(this.knex, this.options.schema, this.options.quotedSchema, this.options.lockTimeoutMs);
    } catch (e) {
      throw this.#map(e, `migrate schema ${this.options.schema}`);
    }
  }

  /**
   * Throws SchemaTooOldError when the schema lacks a migration of this code (what `oncely status`
   * and the other admin commands check before reading, since they do not migrate).
   */
  async assertMigrated(): Promise<void> {
    this.#assertOpen('assertMigrated');
    try {
      await assertMigrated(this.knex, this.options.schema, this.options.quotedSchema);
    } catch (e) {
      throw this.#map(e, `read the migrations of schema ${this.options.schema}`);
    }
  }

  async claim(input: ClaimInput): Promise<Claim> {
    this.#assertOpen('claim');
    checkKey('claim', input);
    checkLease('claim', input.leaseMs);
    if (typeof input.workerId !== 'string' || input.workerId.length === 0) throw new ConfigError('claim: workerId must be set.');
    if (typeof input.initialOffset !== 'bigint' || input.initialOffset < 0n) {
      throw new ConfigError(`claim: initialOffset must be a non-negative bigint; got ${String(input.initialOffset)}.`);
    }
    if (input.force !== undefined && typeof input.force !== 'boolean') throw new ConfigError('claim: force must be a boolean.');
    let row: ClaimRow | undefined;
    try {
      const { rows } = await query(this.knex, this.#sql.claim, {
        lockTimeout: this.#claimLockTimeout,
        group: input.group,
        topic: input.topic,
        partition: input.partition,
        initialOffset: input.initialOffset.toString(),
        owner: input.workerId,
        leaseMs: input.leaseMs,
        reclaim: input.reclaim === true,
        force: input.force === true,
        actor: this.#actor,
        goneGraceMs: graceOf('claim', input.goneGraceMs),
      });
      row = rows[0];
    } catch (e) {
      throw this.#map(e, `claim ${input.topic}/${input.partition}`);
    }
    // No row at all: a concurrent claim created it after this statement's snapshot and holds it.
    if (!row?.claimed) {
      throw new PartitionHeldError(input.topic, input.partition, row?.owner ?? null, Number(row?.lease_left_ms ?? 0));
    }
    return {
      group: input.group,
      topic: input.topic,
      partition: input.partition,
      workerId: input.workerId,
      epoch: BigInt(row.epoch!),
      nextOffset: BigInt(row.next_offset!),
      highestCommitted: row.max_committed_offset === null ? null : BigInt(row.max_committed_offset),
      suspect: row.suspect!,
      ...(row.crash_attempts! > 0 && row.crash_offset !== null
        ? {
            crash: {
              from: BigInt(row.crash_offset),
              // Evidence of 0002 (one offset, no end) covers that one record.
              to: row.crash_end === null ? BigInt(row.crash_offset) + 1n : BigInt(row.crash_end),
              deaths: row.crash_attempts!,
              alone: row.crash_alone ?? 0,
            },
          }
        : {}),
      ...(row.owner !== null
        ? { takenFrom: { owner: row.owner, leaseLive: row.live, ...(row.gone ? { gone: true } : {}) } }
        : {}),
    };
  }

  /** Registers or refreshes this worker and returns the group's live workers (by the server's clock). */
  async heartbeat(worker: WorkerHeartbeat, sessionTimeoutMs: number, options: HeartbeatOptions = {}): Promise<LiveWorker[]> {
    this.#assertOpen('heartbeat');
    checkLease('heartbeat', sessionTimeoutMs);
    try {
      const { rows } = await query(this.knex, this.#sql.heartbeat, {
        lockTimeout: this.#lockTimeout,
        group: worker.group,
        workerId: worker.workerId,
        host: pgText(worker.host),
        pid: worker.pid,
        membership: worker.membership,
        target: worker.target,
        held: worker.held,
        maxPartitions: worker.maxPartitions,
        weight: worker.weight ?? 1,
        sessionTimeoutMs,
        starting: worker.starting === true,
        // A dead worker stays visible to operators for ten session timeouts (at least 5 min).
        forgetMs: Math.min(2_147_483_647, Math.max(300_000, sessionTimeoutMs * 10)),
        goneGraceMs: graceOf('heartbeat', options.goneGraceMs),
      });
      const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
      return rows
        .map((r) => ({
          ...decodeWorker(r),
          owned: Object.entries(r.owned)
            .sort(([a], [b]) => cmp(a, b))
            .flatMap(([topic, ps]) => ps.map((partition) => ({ topic, partition }))),
        }))
        .sort((a, b) => cmp(a.workerId, b.workerId))
        .map((w) => ({
          workerId: w.workerId,
          host: w.host,
          pid: w.pid,
          startedAt: w.startedAt,
          heartbeatAgeMs: w.heartbeatAgeMs,
          membership: w.membership,
          maxPartitions: w.maxPartitions,
          weight: w.weight,
          owned: w.owned,
        }));
    } catch (e) {
      throw this.#map(e, `heartbeat of worker ${worker.workerId}`);
    }
  }

  /** Removes this worker's registration (a clean stop). */
  async leave(group: string, workerId: string): Promise<void> {
    this.#assertOpen('leave');
    try {
      await query(this.knex, this.#sql.leave, { lockTimeout: this.#lockTimeout, group, workerId });
    } catch (e) {
      throw this.#map(e, `unregister worker ${workerId}`);
    }
  }

  /** Writes (null: clears) the crash evidence of the claim's partition outside any transaction. */
  async recordInFlight(claim: Claim, evidence: CrashEvidence | null): Promise<void> {
    this.#assertOpen('recordInFlight');
    try {
      const { rows } = await query(this.knex, this.#sql.recordInFlight, {
        lockTimeout: this.#lockTimeout,
        from: evidence ? evidence.from.toString() : null,
        to: evidence ? evidence.to.toString() : null,
        deaths: evidence?.deaths ?? 0,
        alone: evidence?.alone ?? 0,
        ...fenceOf(claim),
      });
      if (rows.length === 0) throw this.#fenced(claim);
    } catch (e) {
      throw this.#map(e, `record what is in flight on ${claim.topic}/${claim.partition}`);
    }
  }

  /** A plain transaction (lock_timeout set) with no offset movement: dead-letter requeue, admin work. */
  async transaction<R>(work: (tx: Knex.Transaction) => Promise<R>): Promise<R> {
    this.#assertOpen('transaction');
    // Before the transaction takes its connection (the first call reads statement_timeout on another).
    const lockTimeout = await this.#lockTimeoutForHandlers();
    let workFailure: { error: unknown } | undefined;
    // As in runBatch: the work may not end the transaction, and it must still be open at the end.
    let ended: TransactionEndedError | undefined;
    const end = (method: EndingCall | undefined) => {
      ended ??= new TransactionEndedError('a store.transaction() (dead-letter requeue)', method);
      return ended;
    };
    let done = false;
    let settled = false;
    // PostgreSQL may end it for idling, as a batch (the work runs a requeued record's handler).
    const idle = new IdleWatch();
    try {
      const result = await transactionKeepingError(this.knex, async (trx) => {
        try {
          await idle.start(trx);
          await trx.raw(`select set_config('lock_timeout', :lockTimeout, true), ${IDLE_TIMEOUT}, ${BATCH_OPEN}`, {
            lockTimeout,
            idleTimeout: this.#idleTimeout,
          });
          let out: R;
          try {
            out = await work(guardTransaction(trx, end));
          } catch (error) {
            workFailure = { error };
            throw error;
          }
          if (ended) throw ended;
          const { rows } = await trx.raw<Rows<{ open: boolean | null }>>(`select ${STILL_OPEN} as open`);
          if (rows[0]?.open !== true) throw end(undefined);
          done = true;
          return out;
        } finally {
          settled = true;
        }
      });
      if (!done) throw end(undefined);
      return result;
    } catch (e) {
      if (ended) throw ended;
      if (idle.ended(e, workFailure?.error)) {
        throw idleEndedError('transaction', 'transaction', this.options.idleInTransactionTimeoutMs, workFailure?.error ?? e);
      }
      if (!settled && !lostConnection(e)) throw end(undefined);
      if (workFailure) throw workFailure.error;
      throw this.#map(e, 'transaction');
    } finally {
      idle.stop();
    }
  }

  /** Whether an error (from a handler's own statements too) means the database, not the record, failed. */
  isTransientError(e: unknown): boolean {
    return classifyPgError(e) === 'transient';
  }

  /**
   * What kind of failure a driver error is, from its SQLSTATE or socket error (see
   * classifyPgError): transient, the record's (a data error of a handler's own SQL), or systemic.
   */
  classifyError(e: unknown): ErrorClass | undefined {
    return classifyPgError(e);
  }

  /** What an operator does about a systemic driver error (a missing table, a privilege). */
  remedy(e: unknown): string | undefined {
    return pgRemedy(e);
  }

  /**
   * One transaction: BEGIN; start (SET LOCAL lock_timeout + lock-free fencing pre-check); work(tx);
   * commit (CAS + offset_log + dead letters in one statement); COMMIT, in two round trips besides
   * work's own statements. See src/sql/run-batch.ts for how, and why the CAS is last.
   *
   * Errors: FencedError when the claim is stale (before or after the handler; nothing commits);
   * whatever `work` threw, unchanged; AbortedError when options.signal aborts; StoreUnavailableError
   * (retriable) for connection loss and lock timeouts. After a StoreUnavailableError from COMMIT
   * itself the outcome is unknown, and retrying with the same claim and range is still safe: if it
   * did commit, the position moved and the retry is fenced instead of applied twice.
   */
  async runBatch<R>(
    claim: Claim,
    range: BatchRange,
    work: (tx: Knex.Transaction) => Promise<R>,
    options: RunBatchOptions = {},
  ): Promise<R> {
    this.#assertOpen('runBatch');
    if (range.nextOffset < range.fetchedFrom) {
      throw new ConfigError(`runBatch: range.nextOffset ${range.nextOffset} is before range.fetchedFrom ${range.fetchedFrom}.`);
    }
    const { signal } = options;
    if (signal?.aborted) throw new AbortedError();
    const action = `runBatch ${claim.topic}/${claim.partition}`;
    // The benchmark-only unfenced statements bind fewer of these names (no epoch, position, owner).
    const batch: BatchCommitParams = {
      ...fenceOf(claim),
      fetchedFrom: range.fetchedFrom.toString(),
      next: range.nextOffset.toString(),
      recordCount: range.recordCount,
      deadLetters: deadLettersJson(options.deadLetters),
    };
    // Dead letters go with the commit statement sent on its own, their JSON a bound value, not a
    // setting; every other batch commits with the merged statement.
    const merged = !options.deadLetters?.length;
    // Set only when work itself failed: that error goes back to the caller untouched.
    let workFailure: { error: unknown } | undefined;
    // What our function inside knex's transaction threw: it survives a failed ROLLBACK.
    let failure: { error: unknown } | undefined;
    // The handler tried to end the transaction (refused by the guard, or done with SQL).
    let ended: TransactionEndedError | undefined;
    const end = (method: EndingCall | undefined) => {
      ended ??= new TransactionEndedError(`${claim.topic}/${claim.partition}`, method);
      return ended;
    };
    // knex settles a transaction as soon as commit() or rollback() is called on it, while our
    // function may still run: the batch counts only when that function got through the CAS.
    let casMatched = false;
    let settled = false;
    let start: { current: boolean } | undefined;
    let beginFailed = false;
    // knex sent the merged commit: once it fails, the session may be left in the failed transaction.
    let committing = false;
    // PostgreSQL ended the session for idling in the transaction (25P03).
    const idle = new IdleWatch();
    const pool = this.knex.client as PoolConnections;
    // Before the batch takes its connection: the first call reads statement_timeout on another.
    const lockTimeout = await this.#lockTimeoutForHandlers();
    let connection: BatchConnection;
    try {
      connection = await pool.acquireConnection();
    } catch (e) {
      throw this.#map(e, action);
    }
    let rollback = false;
    try {
      idle.watch(connection);
      const beginText = this.#sql.batchBegin.render({
        lockTimeout,
        idleTimeout: this.#idleTimeout,
        ...batch,
      });
      // knex's transaction on our connection: the handler's `tx` (savepoints, knex's checks that it
      // is still open) as before, but BEGIN and COMMIT each carry the store's statement with them.
      const trx = this.knex.transaction(
        async (tx) => {
          try {
            if (start === undefined) {
              throw new ConfigError(
                "PostgresStore: this knex's transactions did not begin with the store's start statement; use knex ^3.3.0.",
              );
            }
            if (!start.current) throw this.#fenced(claim);
            const result = await runWork(
              guardTransaction(tx, end),
              work,
              signal,
              (error) => {
                workFailure = { error };
              },
              () => this.#cancelBackend(tx),
              idle,
            );
            if (ended) throw ended;
            if (signal?.aborted) throw new AbortedError();
            if (!merged) {
              const commit = await queryInTransaction(tx, this.#sql.batchCommit, batch);
              if (commit.rows[0]?.open !== true) throw end(undefined);
              if (commit.rows[0]?.updated !== 1) throw this.#fenced(claim);
              casMatched = true;
            }
            return result;
          } catch (error) {
            failure = { error };
            throw error;
          } finally {
            settled = true;
          }
        },
        { connection },
      ) as unknown as Promise<R> & TransactionSteps;
      // Set before knex runs them (it begins on a later tick).
      trx.begin = (c) =>
        c.query(beginText).then(
          (results) => {
            start = (results as Rows<{ current: boolean }>[])[1]?.rows[0];
          },
          (e: unknown) => {
            beginFailed = true;
            throw e;
          },
        );
      if (merged) {
        trx.commit = (c, value) => {
          committing = true;
          return trx.query(c, this.#sql.batchCommitMerged, 1, value);
        };
      }
      const result = await trx;
      // knex resolves the transaction only once its commit succeeded.
      if (merged) casMatched = committing;
      if (!casMatched) throw end(undefined);
      return result;
    } catch (e) {
      const error = failure ? failure.error : e;
      // A failed BEGIN or merged commit leaves the session in the transaction; knex rolled back the rest.
      rollback = beginFailed || (committing && failure === undefined);
      if (ended) throw ended;
      if (isSqlState(error, ENDED_SQLSTATE)) throw end(undefined);
      if (isSqlState(error, FENCED_SQLSTATE)) throw this.#fenced(claim);
      if (idle.ended(error, workFailure?.error)) {
        throw idleEndedError(action, 'batch', this.options.idleInTransactionTimeoutMs, workFailure?.error ?? error);
      }
      // knex gave up the transaction while the handler still ran: it ended it through knex, unless
      // the connection died (knex then rejects at once; nothing committed, a retry is safe).
      if (!beginFailed && !settled && !lostConnection(error)) throw end(undefined);
      if (workFailure) throw workFailure.error;
      throw this.#map(error, action);
    } finally {
      idle.stop();
      if (rollback) await rollbackOn(connection);
      delete connection.__knexTxId;
      pool.releaseConnection(connection);
    }
  }

  async renew(claims: readonly Claim[], leaseMs: number): Promise<Claim[]> {
    this.#assertOpen('renew');
    checkLease('renew', leaseMs);
    if (claims.length === 0) return [];
    // A stable order keeps concurrent renewals locking rows in the same order.
    const sorted = [...claims].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    try {
      const { rows } = await query(this.knex, this.#sql.renew, {
        lockTimeout: this.#lockTimeout,
        leaseMs,
        groups: sorted.map((c) => c.group),
        topics: sorted.map((c) => c.topic),
        partitions: sorted.map((c) => c.partition),
        epochs: sorted.map((c) => c.epoch.toString()),
        owners: sorted.map((c) => c.workerId),
      });
      const lost = new Set(rows.map((r) => key({ group: r.group_id, topic: r.topic, partition: r.partition })));
      return claims.filter((c) => lost.has(key(c)));
    } catch (e) {
      throw this.#map(e, `renew ${claims.length} claim(s)`);
    }
  }

  /** Releases the claim if it is still current; false when it was not (nothing changed). */
  async release(claim: Claim): Promise<boolean> {
    this.#assertOpen('release');
    try {
      const { rows } = await query(this.knex, this.#sql.release, { lockTimeout: this.#lockTimeout, ...fenceOf(claim) });
      return rows.length === 1;
    } catch (e) {
      throw this.#map(e, `release ${claim.topic}/${claim.partition}`);
    }
  }

  /** Records that this claim's runner stopped the partition at `offset` (shown by `oncely status`). */
  async markStopped(claim: Claim, stop: { offset: bigint; error: string }): Promise<void> {
    this.#assertOpen('markStopped');
    try {
      await query(this.knex, this.#sql.markStopped, {
        lockTimeout: this.#lockTimeout,
        ...fenceOf(claim),
        offset: stop.offset.toString(),
        // Text from an error message: no NUL and no lone surrogate (Postgres refuses both).
        error: pgText(stop.error.slice(0, 2000)),
      });
    } catch (e) {
      throw this.#map(e, `record the stop of ${claim.topic}/${claim.partition}`);
    }
  }

  /** The stored positions of a group (optionally one topic): what `oncely status` shows. */
  async getPositions(group: string, topic?: string): Promise<PartitionPosition[]> {
    this.#assertOpen('getPositions');
    try {
      return await readPositions(this.knex, this.options.schema, group, topic);
    } catch (e) {
      throw this.#map(e, `read positions of group ${group}`);
    }
  }

  /** A round trip that needs oncely's schema (readiness probes): rejects with a StoreError when it fails. */
  async ping(): Promise<void> {
    this.#assertOpen('ping');
    try {
      await this.knex.raw(`select 1 from ${this.options.quotedSchema}.partitions limit 1`);
    } catch (e) {
      throw this.#map(e, 'check the database');
    }
  }

  /** One partition's stored row, or null: the runtime tells a rewind from a takeover with it. */
  async position(key: PartitionKey): Promise<PartitionState | null> {
    this.#assertOpen('position');
    checkKey('position', key);
    try {
      return (await readPositions(this.knex, this.options.schema, key.group, key.topic, key.partition))[0] ?? null;
    } catch (e) {
      throw this.#map(e, `read position of ${key.topic}/${key.partition}`);
    }
  }

  /**
   * Where in [from, to) this group applied records before: offset_log batches committed with
   * records and requeued dead letters, merged (src/sql/applied-ranges.ts). What ctx.isReplay is
   * decided by after a rewind.
   */
  async appliedRanges(key: PartitionKey, from: bigint, to: bigint): Promise<OffsetRange[]> {
    this.#assertOpen('appliedRanges');
    checkKey('appliedRanges', key);
    if (to <= from) return [];
    try {
      const { rows } = await query(this.knex, this.#sql.appliedRanges, {
        group: key.group,
        topic: key.topic,
        partition: key.partition,
        from: from.toString(),
        to: to.toString(),
      });
      return rows.map((r) => ({ from: BigInt(r.from_offset), to: BigInt(r.to_offset) }));
    } catch (e) {
      throw this.#map(e, `read applied ranges of ${key.topic}/${key.partition}`);
    }
  }

  /** Committed batches of a group, newest first (history, point-in-time lookups). */
  async offsetLog(query: OffsetLogQuery): Promise<OffsetLogEntry[]> {
    this.#assertOpen('offsetLog');
    try {
      return await readOffsetLog(this.knex, this.options.schema, query);
    } catch (e) {
      throw this.#map(e, `read offset log of group ${query.group}`);
    }
  }

  /** Closes the pool if the store created it (a knex instance you passed stays open). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (this.options.ownsPool ? this.knex.destroy() : Promise.resolve()).finally(() => this.#logGate.flush());
    return this.#closing;
  }

  #assertOpen(operation: string): void {
    if (this.#closing) throw new StateError(`PostgresStore.${operation}() called in state 'closed'; create a new store.`);
  }

  /**
   * Cancels the statement running in `trx` (pg_cancel_backend from a connection outside the pool,
   * which may be exhausted), so an aborted batch rolls back now: without it, ROLLBACK would queue
   * behind a handler's long statement on the same connection. When the cancel cannot be sent, the
   * connection is destroyed instead, so that at least the worker does not wait for it.
   */
  async #cancelBackend(trx: Knex.Transaction): Promise<void> {
    const client = this.knex.client as RawConnections;
    let busy: PgConnection | undefined;
    try {
      busy = (await trx.client.acquireConnection()) as PgConnection;
      const pid = busy.processID;
      if (typeof pid !== 'number') return;
      const raw = await withTimeout(client.acquireRawConnection(), CANCEL_TIMEOUT_MS, (late) => {
        void client.destroyRawConnection(late).catch(() => {});
      });
      try {
        await withTimeout(raw.query('select pg_cancel_backend($1)', [pid]), CANCEL_TIMEOUT_MS);
      } finally {
        await client.destroyRawConnection(raw).catch(() => {});
      }
    } catch {
      busy?.connection?.stream?.destroy();
    }
  }

  /**
   * The lock_timeout of the transactions that run a handler: lockTimeoutMs, unless the session's
   * statement_timeout (the role's or the database's, read once) is not above it. A handler's
   * statement waiting on a lock would then be cancelled by the statement timeout first, 57014,
   * which counts as the record's failure (a slow statement): healthy records retried, then
   * dead-lettered, while another session held a lock. Half the statement timeout makes the wait
   * fail as a lock timeout (55P03, retried as an outage) first. Said once in the log.
   */
  #lockTimeoutForHandlers(): Promise<string> {
    this.#handlerLockTimeout ??= this.#readStatementTimeout().then(
      (statementMs) => {
        const lockMs = this.options.lockTimeoutMs;
        if (statementMs <= 0 || statementMs > lockMs) return this.#lockTimeout;
        const chosen = Math.max(1, Math.floor(statementMs / 2));
        this.#logger.warn(
          `PostgreSQL's statement_timeout (${statementMs} ms) is not above the store's lockTimeoutMs (${lockMs} ms): ` +
            `a handler's statement waiting on a lock would be cancelled as a slow statement (57014, the record's failure) ` +
            `before its lock wait failed; batches wait at most ${chosen} ms for a lock instead, retried as an outage. ` +
            'Raise statement_timeout for this role, or lower lockTimeoutMs (--lock-timeout), to choose yourself.',
          { statementTimeoutMs: statementMs, lockTimeoutMs: lockMs, batchLockTimeoutMs: chosen },
        );
        return String(chosen);
      },
      () => {
        // Read again with the next batch, which meets whatever made this fail.
        this.#handlerLockTimeout = undefined;
        return this.#lockTimeout;
      },
    );
    return this.#handlerLockTimeout;
  }

  async #readStatementTimeout(): Promise<number> {
    const { rows } = await this.knex.raw<Rows<{ ms: number }>>(
      "select setting::int as ms from pg_settings where name = 'statement_timeout'",
    );
    return rows[0]?.ms ?? 0;
  }

  #fenced(claim: Claim): FencedError {
    return new FencedError(claim.topic, claim.partition, claim.epoch);
  }

  #map(e: unknown, action: string) {
    return mapStoreError(e, action, this.options.target, this.options.lockTimeoutMs);
  }
}

/**
 * Runs the handler; an aborted signal rejects at once (the transaction then rolls back), and so
 * does PostgreSQL ending the transaction for idling (`idle`): a handler that never settles, its
 * session gone, would otherwise hold the batch for ever. A handler error that arrives after either
 * is not reported as the batch's failure: the abort or the end decided it.
 */
function runWork<R>(
  trx: Knex.Transaction,
  work: (tx: Knex.Transaction) => Promise<R>,
  signal: AbortSignal | undefined,
  onWorkError: (error: unknown) => void,
  cancel: () => Promise<void>,
  idle: IdleWatch,
): Promise<R> {
  let aborted = false;
  const running = (async () => work(trx))().catch((error: unknown) => {
    if (!aborted) onWorkError(error);
    throw error;
  });
  return new Promise<R>((resolve, reject) => {
    const onAbort = () => {
      if (aborted) return;
      aborted = true;
      running.catch(() => {}); // its error (57014 after the cancel) is the abort's doing
      // The rejection (then ROLLBACK) waits for the cancel: a cancel arriving after the connection
      // went back to the pool would hit another transaction's statement.
      void cancel().finally(() => reject(new AbortedError()));
    };
    // The session is gone: nothing to cancel, and the handler's statements can only fail now.
    idle.onEnded((error) => {
      if (aborted) return;
      aborted = true;
      running.catch(() => {});
      reject(error);
    });
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    running
      .then(
        (v) => {
          if (!aborted) resolve(v);
        },
        (e: unknown) => {
          if (!aborted) reject(e);
        },
      )
      .finally(() => {
        signal?.removeEventListener('abort', onAbort);
        idle.onEnded(undefined);
      });
  });
}

/** Whether `e` is PostgreSQL's error with SQLSTATE `code`. */
function isSqlState(e: unknown, code: string): boolean {
  return e instanceof Error && (e as { code?: unknown }).code === code;
}

/** The pooled connection a batch runs on. */
interface BatchConnection extends ErrorEmitter {
  query(text: string): Promise<unknown>;
  __knexTxId?: string;
  connection?: { stream?: { destroy(): void } };
}

/** knex's pool, as the store takes a batch's connection from it and gives it back. */
interface PoolConnections {
  acquireConnection(): Promise<BatchConnection>;
  releaseConnection(connection: BatchConnection): unknown;
}

/**
 * The steps of a knex transaction that runBatch replaces on its instance: begin(), which knex
 * sends before it calls our function, and commit(), which it sends after; query() is how knex runs
 * a step's SQL and settles the transaction (status 1: resolve with `value`).
 */
interface TransactionSteps {
  begin(connection: BatchConnection): Promise<unknown>;
  commit(connection: BatchConnection, value: unknown): Promise<unknown>;
  query(connection: BatchConnection, sql: string, status?: number, value?: unknown): Promise<unknown>;
}

/**
 * ROLLBACK after a failed BEGIN or merged commit, before the connection goes back to the pool. A
 * connection that does not answer within the cancel timeout is destroyed instead, so that the pool
 * never hands out a session that may still be inside the failed transaction.
 */
async function rollbackOn(connection: BatchConnection): Promise<void> {
  try {
    await withTimeout(connection.query('rollback'), CANCEL_TIMEOUT_MS);
  } catch {
    connection.connection?.stream?.destroy();
  }
}

/** Whether a transaction failed because its connection was lost (not because a handler ended it). */
function lostConnection(e: unknown): boolean {
  return e instanceof Error && isConnectionError(e);
}

/** The parts of a node-postgres client used to cancel its statement. */
interface PgConnection {
  processID?: number | null;
  connection?: { stream?: { destroy(): void } };
  query(text: string, values: unknown[]): Promise<unknown>;
}

/** knex's connections outside its pool. */
interface RawConnections {
  acquireRawConnection(): Promise<PgConnection>;
  destroyRawConnection(connection: PgConnection): Promise<void>;
}

/** How long a cancel may take to connect and run before the connection is destroyed instead. */
const CANCEL_TIMEOUT_MS = 2000;

/** Settles with `work`, or rejects after `ms`; a result arriving later goes to `late`. */
function withTimeout<T>(work: Promise<T>, ms: number, late?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
    work.then(
      (v) => {
        clearTimeout(timer);
        if (timedOut) late?.(v);
        else resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
