import { NAMED, type Statement } from './statement.js';

/**
 * The two store statements of a batch transaction. The transaction is:
 *
 *   BEGIN           ┐ one round trip (batchBeginSql)
 *   batchStartSql   ┘ SET LOCAL lock_timeout + a lock-free check that the claim is still current
 *   … the handler's statements (work(tx)) …
 *   batchCommitSql  ┐ the compare-and-set + offset_log row + dead letters, one statement; one
 *   COMMIT          ┘ round trip with COMMIT (batchCommitMergedSql)
 *
 * Why the CAS goes last. The CAS first would lock the partition row for the whole handler: a
 * concurrent claim, rewind or lease renewal of that row would wait for the in-flight batch (or hit
 * lock_timeout), the lease written at the start could expire before the commit makes it visible,
 * and offset_log.committed_at would be the batch's start, not its commit. With the CAS last the row
 * is locked only between the final statement and COMMIT, "offset statement and COMMIT together".
 * Early fencing is kept without a lock: the start statement, which must run anyway to set
 * lock_timeout, also reads the row, so a worker that was fenced before the batch (the common case:
 * a claim happened while it was fetching) fails before running the handler. A fence that lands
 * during the handler is caught by the CAS, which alone decides.
 *
 * Round trips. BEGIN and the start statement go as one simple query (the start's values inlined as
 * literals, {@link batchBeginSql}), and so do the commit statement and COMMIT
 * ({@link batchCommitMergedSql}): a batch costs two round trips besides the handler's own
 * statements instead of four. The merged commit cannot take bound values (a simple query has none),
 * so the start statement also stores them as transaction-local settings that the commit reads
 * back, and a DO block between the CAS and COMMIT raises (SQLSTATE {@link FENCED_SQLSTATE} or
 * {@link ENDED_SQLSTATE}) when the CAS matched no row: the rest of the string, COMMIT included, is
 * then skipped and the store rolls back. A batch with dead letters sends its commit statement on
 * its own, with its values bound, as before (their JSON can be large).
 *
 * Price, measured with bench/cas-position.ts (PostgreSQL 15 on loopback, a shared 2-core machine
 * under load, so read ratios, not absolutes): one more round trip per batch (BEGIN, start, CAS,
 * COMMIT around the handler, against BEGIN, CAS, COMMIT). With a
 * 1-statement handler CAS-first committed 1.2–2x more batches/s (1 partition: ~400 vs ~300/s, p50
 * 1.6 vs 2.7 ms; 8 partitions: 800–1200 vs ~600/s); with a 50-statement handler the two were within
 * noise (1 partition: 69–81 vs 75–89/s). A claim issued while a 200 ms handler ran waited 204 ms
 * with CAS-first and 1.5 ms with CAS-last. We keep CAS-last: the extra round trip is a constant per
 * batch that large batches amortize exactly when throughput matters (a lagging partition), while
 * CAS-first would make core's single renew() of all partitions wait behind the slowest in-flight
 * batch, stall claims and rewinds for a handler's duration, and publish a lease that started
 * counting when the batch began. It is also the order core's in-memory store commits in.
 */

/** A claim's fence: the row's key, and the epoch, position and owner a commit must still find. */
export interface FenceParams {
  group: string;
  topic: string;
  partition: number;
  epoch: string;
  /** The position the batch was fetched from (the row's next_offset while the claim is current). */
  fetchedFrom: string;
  owner: string;
}

/** The values {@link batchCommitSql} binds: the fence, the new position, the batch's size and its dead letters. */
export interface BatchCommitParams extends FenceParams {
  next: string;
  recordCount: number;
  /** The JSON array of dead-letters-json.ts. */
  deadLetters: string;
}

/**
 * Marks the transaction as oncely's open batch: a setting local to the transaction, which COMMIT,
 * ROLLBACK or END sent by a handler as SQL would discard. The commit statement requires it, so a
 * transaction the handler ended can never have its offset moved by a statement that then runs on
 * its own (autocommit), and the store can tell the handler's doing from a fence.
 */
export const BATCH_OPEN = `set_config('oncely.batch_open', 'on', true)`;
/**
 * `SET LOCAL idle_in_transaction_session_timeout` (PostgresStoreOptions.idleInTransactionTimeoutMs):
 * a process frozen between two statements of its batch, e.g. between the compare-and-set and
 * COMMIT while it holds the partition row, has its session ended by PostgreSQL after that long, so
 * its locks cannot keep the other workers from taking the partition over. '0' is off.
 */
export const IDLE_TIMEOUT = `set_config('idle_in_transaction_session_timeout', :idleTimeout, true)`;
export const STILL_OPEN = `current_setting('oncely.batch_open', true) = 'on'`;

/**
 * Sets lock_timeout for the transaction (set_config(…, true) = SET LOCAL), marks it open, and
 * reports whether the claim is still current, without locking the row.
 */
export function batchStartSql(
  schema: string,
): Statement<FenceParams & { lockTimeout: string; idleTimeout: string }, { current: boolean }> {
  return `
select set_config('lock_timeout', :lockTimeout, true) as lock_timeout, ${IDLE_TIMEOUT} as idle_timeout, ${BATCH_OPEN} as open,
       exists (
         select 1 from ${schema}.partitions
          where group_id = :group and topic = :topic and partition = :partition::int
            and epoch = :epoch::bigint and next_offset = :fetchedFrom::bigint and owner = :owner
       ) as current`;
}

/**
 * The commit: compare-and-set of the position guarded by epoch, position and owner; extends the
 * lease from the row's own lease_ms (the commit is a renewal) against clock_timestamp(), the time
 * of this statement rather than the transaction start; writes the offset_log row and the dead
 * letters only if the CAS matched (both select from `cas`). Zero rows from `cas` = fenced, unless
 * `open` is false: then the handler ended the transaction and nothing ran in it. The caller rolls
 * back. greatest() ignores the null of a never-committed partition.
 *
 * Dead letters arrive as one JSON array (json_to_recordset): any number of rows, one statement.
 * Bytes are base64 in the JSON and decoded here. The offset_log row spans the fetched position to
 * the new one.
 */
export function batchCommitSql(schema: string): Statement<BatchCommitParams, { updated: number; open: boolean }> {
  return commitSql(schema, FENCE);
}

/** The compare-and-set's guard: the claim's epoch, the position it fetched from, the owner. */
const FENCE = `
     and p.epoch = :epoch::bigint and p.next_offset = :fetchedFrom::bigint and p.owner = :owner`;

/** The commit statement's last select: what it reports when bound and run on its own. */
const COMMIT_RESULT = `select count(*)::int as updated, coalesce(${STILL_OPEN}, false) as open from cas`;

function commitSql(schema: string, fence: string, result = COMMIT_RESULT): string {
  return `
with cas as (
  update ${schema}.partitions p
     set next_offset = :next::bigint,
         max_committed_offset = greatest(p.max_committed_offset, :next::bigint),
         lease_expires_at = clock_timestamp() + coalesce(p.lease_ms, 0) * interval '1 millisecond',
         -- A commit proves the worker got past its position: nothing is pending a crash count.
         suspect = false,
         crash_offset = null,
         crash_end = null,
         crash_attempts = 0,
         crash_alone = 0,
         updated_at = clock_timestamp()
   where p.group_id = :group and p.topic = :topic and p.partition = :partition::int${fence}
     and ${STILL_OPEN}
  returning p.group_id, p.topic, p.partition, p.epoch, p.owner
),
log as (
  insert into ${schema}.offset_log (group_id, topic, partition, from_offset, to_offset, record_count, epoch, worker_id)
  select group_id, topic, partition, :fetchedFrom::bigint, :next::bigint, :recordCount::int, epoch, owner from cas
),
dead as (
  insert into ${schema}.dead_letters
    (group_id, topic, partition, "offset", key, value, headers, record_timestamp, error_name, error_message,
     error_code, error_stack, attempts, first_failed_at, last_failed_at, epoch, worker_id)
  select cas.group_id, cas.topic, cas.partition, d."offset", decode(d.key, 'base64'), decode(d.value, 'base64'),
         d.headers, d.record_timestamp, d.error_name, d.error_message, d.error_code, d.error_stack, d.attempts,
         d.first_failed_at, d.last_failed_at, cas.epoch, cas.owner
    from cas
   cross join json_to_recordset(:deadLetters::json) as d(
     "offset" bigint, key text, value text, headers jsonb, record_timestamp timestamptz, error_name text,
     error_message text, error_code text, error_stack text, attempts int, first_failed_at timestamptz,
     last_failed_at timestamptz)
)
${result}`;
}

/**
 * BENCHMARK ONLY (`unsafeUnfencedCommitsForBenchmarks`): the start statement without the fencing
 * check. It still sets lock_timeout and the open mark, which every transaction needs, so the difference to
 * {@link batchStartSql} is exactly the price of early fencing.
 */
export function batchStartUnfencedSql(): Statement<{ lockTimeout: string; idleTimeout: string }, { current: boolean }> {
  return `select set_config('lock_timeout', :lockTimeout, true) as lock_timeout, ${IDLE_TIMEOUT} as idle_timeout, ${BATCH_OPEN} as open, true as current`;
}

/**
 * BENCHMARK ONLY (`unsafeUnfencedCommitsForBenchmarks`): {@link batchCommitSql} with the
 * compare-and-set replaced by a plain update of the partition's row (no epoch, position or owner
 * predicate), everything else the same, so a benchmark prices the fence and nothing else. A fenced
 * worker would commit with it: never use it outside a benchmark.
 */
export function batchCommitUnfencedSql(
  schema: string,
): Statement<Omit<BatchCommitParams, 'epoch' | 'owner'>, { updated: number; open: boolean }> {
  return commitSql(schema, '');
}

/** The SQLSTATE of a merged commit whose compare-and-set matched no row while the transaction was open: fenced. */
export const FENCED_SQLSTATE = 'OC001';
/** The SQLSTATE of a merged commit that found the transaction ended (the handler ended it with SQL). */
export const ENDED_SQLSTATE = 'OC002';

/** The prefix of the transaction-local settings that carry the commit's values from the start statement. */
const STASH = 'oncely.b_';

/** The names a statement binds, each once, in order of first use. */
export function boundNames(statement: string): string[] {
  return [...new Set(Array.from(statement.matchAll(NAMED), (m) => m[1]!))];
}

/**
 * BEGIN, the start statement, and a select that stores each of `commitNames` as a
 * transaction-local setting for {@link batchCommitMergedSql}: one simple query. Its values are
 * inlined as literals (statement.ts inlineValues) when it is sent.
 */
export function batchBeginSql(start: string, commitNames: readonly string[]): string {
  const stash = commitNames.map((n) => `set_config('${STASH}${n}', :${n}, true)`).join(', ');
  return `begin;\n${start.trim()};\nselect ${stash}`;
}

/**
 * The commit statement (`commit`: {@link batchCommitSql}'s text, or the unfenced one), reading its
 * values back from the settings {@link batchBeginSql} stored, then the DO block that raises when
 * the compare-and-set matched no row, then COMMIT: one simple query, the same text for every batch.
 * A setting that is gone (the handler ended the transaction, so the statement runs on its own)
 * reads as null, which matches no row.
 */
export function batchCommitMergedSql(schema: string, fenced = true): string {
  const result = `select set_config('${STASH}updated', count(*)::text, true) as updated from cas`;
  const cas = commitSql(schema, fenced ? FENCE : '', result).replace(
    NAMED,
    (_m, name: string) => `nullif(current_setting('${STASH}${name}', true), '')`,
  );
  const text = `${cas.trim()};
do $oncely$
begin
  if current_setting('${STASH}updated', true) is distinct from '1' then
    if ${STILL_OPEN} then
      raise exception using errcode = '${FENCED_SQLSTATE}',
        message = 'oncely: the claim changed before the batch committed (fenced); nothing of the batch was committed';
    end if;
    raise exception using errcode = '${ENDED_SQLSTATE}',
      message = 'oncely: the batch transaction was ended before its commit; the offset did not move';
  end if;
end
$oncely$;
commit`;
  // knex renumbers every ? of a text it sends as a bound value, literals included.
  if (text.includes('?')) throw new Error('batchCommitMergedSql: the text may not contain "?".');
  return text;
}
