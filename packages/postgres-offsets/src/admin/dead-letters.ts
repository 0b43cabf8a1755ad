import { type App, applyRecordOnce, ConfigError, type Logger, OncelyError, pgText, type RawRecord, toError } from '@oncely/core';
import type { Knex } from 'knex';
import { mapStoreError } from '../errors.js';
import type { Rows } from '../sql/rows.js';
import type { PostgresStore } from '../store/store.js';
import { transactionKeepingError } from '../store/transaction-errors.js';
import { defaultActor, writeAudit } from './audit.js';

/** One dead-lettered record: the record as it was read, the last error, and where it came from. */
export interface DeadLetterEntry {
  id: bigint;
  group: string;
  topic: string;
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  /** In wire order; a name may repeat. */
  headers: Array<{ name: string; value: Buffer | null }>;
  /** The record's timestamp; null when Kafka had none. */
  timestamp: Date | null;
  errorName: string;
  errorMessage: string;
  errorCode: string | null;
  errorStack: string | null;
  /** Attempts before it was dead-lettered, plus failed requeues. */
  attempts: number;
  firstFailedAt: Date;
  lastFailedAt: Date;
  epoch: bigint | null;
  workerId: string | null;
  createdAt: Date;
  /** Set once a requeue applied it; such rows are kept for the record but are no longer pending. */
  replayedAt: Date | null;
}

/** Which dead letters an operation covers: `ids`, or every one of `group` (narrowed by topic and age). */
export interface DeadLetterSelection {
  ids?: readonly bigint[];
  group?: string;
  topic?: string;
  /** Only those dead-lettered before this moment. */
  before?: Date;
  /** Include rows a requeue already applied. Default: false for list and requeue, true for purge. */
  includeReplayed?: boolean;
}

/** How requeuing one dead letter went. */
export interface RequeueOutcome {
  id: bigint;
  topic: string;
  partition: number;
  offset: bigint;
  /** 'applied': the handler's writes and the row's `replayed_at` committed together; 'failed': nothing committed, the row stays pending. */
  status: 'applied' | 'failed';
  /** The failure of a 'failed' requeue (redacted message, code). */
  error?: { name: string; code: string | null; message: string };
}

/** Options of `new DeadLetters(…)`. */
export interface DeadLettersOptions {
  /** The store whose schema, pool and transactions are used (not closed here). */
  store: PostgresStore;
  /** Recorded in admin_audit. Default `<user>@<host>`. */
  actor?: string;
}

interface Row {
  id: string;
  group_id: string;
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<{ name: string; value: string | null }>;
  record_timestamp: Date | null;
  error_name: string;
  error_message: string;
  error_code: string | null;
  error_stack: string | null;
  attempts: number;
  first_failed_at: Date;
  last_failed_at: Date;
  epoch: string | null;
  worker_id: string | null;
  created_at: Date;
  replayed_at: Date | null;
}

function toEntry(r: Row): DeadLetterEntry {
  return {
    id: BigInt(r.id),
    group: r.group_id,
    topic: r.topic,
    partition: r.partition,
    offset: BigInt(r.offset),
    key: r.key,
    value: r.value,
    headers: (r.headers ?? []).map((h) => ({ name: h.name, value: h.value === null ? null : Buffer.from(h.value, 'base64') })),
    timestamp: r.record_timestamp,
    errorName: r.error_name,
    errorMessage: r.error_message,
    errorCode: r.error_code,
    errorStack: r.error_stack,
    attempts: r.attempts,
    firstFailedAt: r.first_failed_at,
    lastFailedAt: r.last_failed_at,
    epoch: r.epoch === null ? null : BigInt(r.epoch),
    workerId: r.worker_id,
    createdAt: r.created_at,
    replayedAt: r.replayed_at,
  };
}

/** The record as the handler saw it, rebuilt from the stored row. */
function toRawRecord(d: DeadLetterEntry): RawRecord {
  return {
    offset: d.offset,
    timestamp: d.timestamp ? d.timestamp.getTime() : -1,
    key: d.key,
    value: d.value,
    headers: d.headers.map((h) => [h.name, h.value] as const),
  };
}

// Postgres text cannot hold NUL; an error message with one must still be recordable.
// Postgres text refuses NUL, and the audit's jsonb a lone surrogate too (see pgText).
const text = (s: string) => pgText(s);

/**
 * Operator actions on dead letters: list, show, requeue (re-run the app's current handler, once),
 * purge. Every change writes an admin_audit row in the transaction that makes it.
 *
 * A requeue runs the handler and marks the row replayed in **one** transaction: the record is
 * applied exactly once again, or not at all (a failing or concurrent second requeue matches no
 * pending row and rolls back).
 *
 * @example
 * const dlq = new DeadLetters({ store });
 * for (const d of await dlq.list({ group: 'ledger' })) console.log(d.id, d.errorMessage);
 * const outcomes = await dlq.requeue(fixedApp, { ids: [42n] }, { actor: 'alice' });
 */
export class DeadLetters {
  readonly #store: PostgresStore;
  readonly #actor: string;
  readonly #s: string;

  constructor(options: DeadLettersOptions) {
    if (!options?.store) throw new ConfigError('DeadLetters needs a store: new DeadLetters({ store: new PostgresStore(…) }).');
    this.#store = options.store;
    this.#actor = options.actor ?? defaultActor();
    // The schema was validated by the store's options; it is the only identifier in these texts.
    this.#s = options.store.options.quotedSchema;
  }

  get #knex(): Knex {
    return this.#store.knex;
  }

  /** Dead letters, oldest first; pending ones only unless `includeReplayed`. */
  async list(selection: DeadLetterSelection = {}, options: { limit?: number } = {}): Promise<DeadLetterEntry[]> {
    const limit = options.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1) throw new ConfigError(`limit must be a positive integer; got ${limit}.`);
    return this.#run('list dead letters', async () => {
      const [where, params] = this.#where(selection, false);
      const { rows } = await this.#knex.raw<Rows<Row>>(
        // d.id, not id: the bare name would sort the select list's id::text (1, 10, 11, 2, …).
        `select ${COLUMNS} from ${this.#s}.dead_letters d where ${where} order by d.id limit :limit`,
        { ...params, limit },
      );
      return rows.map(toEntry);
    });
  }

  /** One dead letter by id (pending or replayed), or undefined. */
  async get(id: bigint): Promise<DeadLetterEntry | undefined> {
    checkId(id);
    return this.#run(`read dead letter ${id}`, async () => {
      const { rows } = await this.#knex.raw<Rows<Row>>(`select ${COLUMNS} from ${this.#s}.dead_letters where id = :id`, {
        id: id.toString(),
      });
      return rows[0] ? toEntry(rows[0]) : undefined;
    });
  }

  /** How many dead letters a purge with this selection would delete. */
  async count(selection: DeadLetterSelection): Promise<number> {
    requireScope(selection, 'count');
    return this.#run('count dead letters', async () => {
      const [where, params] = this.#where(selection, true);
      const { rows } = await this.#knex.raw<Rows<{ n: number }>>(
        `select count(*)::int as n from ${this.#s}.dead_letters where ${where}`,
        params,
      );
      return rows[0]!.n;
    });
  }

  /**
   * Re-runs `app`'s current handler on each selected pending dead letter, one transaction per
   * record (handler writes + `replayed_at` + audit row). A record that fails again stays pending,
   * its error, attempts and last failure updated; the outcome says so. Records are taken in id order.
   */
  async requeue(
    app: App<Knex.Transaction>,
    selection: DeadLetterSelection,
    options: { actor?: string; logger?: Logger } = {},
  ): Promise<RequeueOutcome[]> {
    requireScope(selection, 'requeue');
    const selected = await this.list({ ...selection, includeReplayed: false }, { limit: 100_000 });
    if (selection.ids) {
      const found = new Set(selected.map((d) => d.id));
      const missing = selection.ids.filter((id) => !found.has(id));
      if (missing.length > 0) {
        throw new ConfigError(
          `No pending dead letter with id ${missing.join(', ')} (already requeued, purged, or never existed); \`oncely dlq list\` shows the pending ones.`,
        );
      }
    }
    const foreign = selected.find((d) => d.group !== app.group);
    if (foreign) {
      throw new ConfigError(
        `Dead letter ${foreign.id} belongs to group '${foreign.group}' but the app's group is '${app.group}': requeue it with that group's app module.`,
      );
    }
    const actor = options.actor ?? this.#actor;
    const outcomes: RequeueOutcome[] = [];
    for (const d of selected) {
      const base = { id: d.id, topic: d.topic, partition: d.partition, offset: d.offset };
      try {
        await applyRecordOnce(
          app,
          this.#store,
          { topic: d.topic, partition: d.partition, record: toRawRecord(d) },
          {
            logger: options.logger,
            workerId: `requeue:${actor}`,
            // biome-ignore lint/suspicious/noThenProperty: applyRecordOnce's option, not a thenable
            then: async (tx) => {
              const { rows } = await tx.raw<Rows<{ id: string }>>(
                `update ${this.#s}.dead_letters set replayed_at = clock_timestamp()
                  where id = :id and replayed_at is null returning id::text`,
                { id: d.id.toString() },
              );
              // Another requeue applied it meanwhile: roll this one back, so it is applied once.
              if (rows.length === 0) throw new ConfigError(`Dead letter ${d.id} was requeued concurrently; not applied again.`);
              await this.#audit(tx, 'dlq.requeue', d.group, { ...coordinates(d), result: 'applied' }, actor);
            },
          },
        );
        outcomes.push({ ...base, status: 'applied' });
      } catch (e) {
        const err = unwrap(e);
        const error = { name: err.name, code: OncelyError.is(err) ? err.code : null, message: err.message };
        await this.#run(`record the failed requeue of dead letter ${d.id}`, () =>
          transactionKeepingError(this.#knex, async (tx) => {
            await tx.raw(
              `update ${this.#s}.dead_letters
                  set attempts = attempts + 1, last_failed_at = clock_timestamp(), error_name = :name,
                      error_message = :message, error_code = :code, error_stack = :stack
                where id = :id and replayed_at is null`,
              {
                name: text(err.name || 'Error'),
                message: text(err.message),
                code: error.code,
                stack: err.stack ? text(err.stack) : null,
                id: d.id.toString(),
              },
            );
            await this.#audit(tx, 'dlq.requeue', d.group, { ...coordinates(d), result: 'failed', error }, actor);
          }),
        );
        outcomes.push({ ...base, status: 'failed', error });
      }
    }
    return outcomes;
  }

  /** Deletes the selected dead letters (pending and replayed) in one transaction; returns how many. */
  async purge(selection: DeadLetterSelection, options: { actor?: string } = {}): Promise<{ deleted: number; auditId: bigint }> {
    requireScope(selection, 'purge');
    return this.#run('purge dead letters', () =>
      transactionKeepingError(this.#knex, async (tx) => {
        const [where, params] = this.#where(selection, true);
        const { rows } = await tx.raw<Rows<{ id: string; group_id: string }>>(
          `delete from ${this.#s}.dead_letters where ${where} returning id::text, group_id`,
          params,
        );
        const groups = [...new Set(rows.map((r) => r.group_id))];
        const auditId = await this.#audit(
          tx,
          'dlq.purge',
          selection.group ?? (groups.length === 1 ? groups[0]! : null),
          {
            selection: {
              ids: selection.ids?.map(String),
              group: selection.group,
              topic: selection.topic,
              before: selection.before?.toISOString(),
            },
            deleted: rows.length,
            ids: rows.map((r) => r.id),
          },
          options.actor ?? this.#actor,
        );
        return { deleted: rows.length, auditId };
      }),
    );
  }

  /** A where clause over bound values only (group and topic names are never identifiers). */
  #where(sel: DeadLetterSelection, includeReplayedByDefault: boolean): [string, Knex.ValueDict] {
    const clauses: string[] = [];
    const params: Knex.ValueDict = {};
    if (sel.ids !== undefined) {
      for (const id of sel.ids) checkId(id);
      clauses.push('id = any(:ids::bigint[])');
      params.ids = sel.ids.map(String);
    }
    if (sel.group !== undefined) {
      clauses.push('group_id = :group');
      params.group = sel.group;
    }
    if (sel.topic !== undefined) {
      clauses.push('topic = :topic');
      params.topic = sel.topic;
    }
    if (sel.before !== undefined) {
      if (!(sel.before instanceof Date) || Number.isNaN(sel.before.getTime()))
        throw new ConfigError('before must be a valid Date (e.g. --before 2024-05-01T00:00:00Z).');
      clauses.push('created_at < :before');
      params.before = sel.before.toISOString();
    }
    if (!(sel.includeReplayed ?? includeReplayedByDefault)) clauses.push('replayed_at is null');
    return [clauses.length > 0 ? clauses.join(' and ') : 'true', params];
  }

  #audit(tx: Knex.Transaction, action: string, group: string | null, details: object, actor: string): Promise<bigint> {
    return writeAudit(tx, this.#s, { actor, action, group, details });
  }

  async #run<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw mapStoreError(e, action, this.#store.options.target, this.#store.options.lockTimeoutMs);
    }
  }
}

const COLUMNS = `id::text, group_id, topic, partition, "offset"::text, key, value, headers, record_timestamp, error_name,
  error_message, error_code, error_stack, attempts, first_failed_at, last_failed_at, epoch::text, worker_id, created_at, replayed_at`;

function coordinates(d: DeadLetterEntry) {
  return { id: d.id.toString(), topic: d.topic, partition: d.partition, offset: d.offset.toString() };
}

function checkId(id: unknown): void {
  if (typeof id !== 'bigint' || id < 1n) throw new ConfigError(`A dead-letter id is a positive integer; got ${String(id)}.`);
}

/** A destructive or bulk operation needs ids or a group: never "everything" by omission. */
function requireScope(sel: DeadLetterSelection, what: string): void {
  const hasIds = sel.ids !== undefined && sel.ids.length > 0;
  if (!hasIds && (typeof sel.group !== 'string' || sel.group.length === 0)) {
    throw new ConfigError(
      `A dead-letter ${what} needs ids or a group (e.g. --group ledger); it never covers every group by omission.`,
    );
  }
}

/** The handler's own error rather than the wrapper that names the record. */
function unwrap(e: unknown): Error {
  const err = toError(e);
  return err.name === 'RecordFailedError' && err.cause !== undefined ? toError(err.cause) : err;
}
