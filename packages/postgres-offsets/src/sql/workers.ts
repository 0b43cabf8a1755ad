import { WORKER_COLUMNS, type WorkerRow } from './rows.js';

/**
 * Whether the worker row `w` belongs to a process that is gone: the PostgreSQL session of its last
 * heartbeat (migration 0008) has ended, and that heartbeat is older than the grace `grace`, an
 * int expression of milliseconds (null: never gone; then only the session timeout and the leases
 * count). The workers bind their own (`:goneGraceMs`); a reader that runs no rounds (`oncely
 * status`) uses the grace the worker recorded with its heartbeat (0009, {@link recordedGraceSql}). A killed process's sessions
 * end with it (the kernel closes its sockets, each backend exits), so a peer needs to wait only
 * the grace, not the session timeout. Unsure means alive, so the lease decides as before:
 *
 * - the grace: a live worker whose heartbeat session ended (a reset connection, a terminated
 *   backend) heartbeats again from another connection within a round, and its fresh heartbeat
 *   makes it live whatever happened to the old session;
 * - a session that started before the server did (pg_postmaster_start_time): every session ended
 *   when PostgreSQL restarted or failed over, the live workers' too, so that is no evidence;
 * - a backend with that pid whose start time this role may not read (pg_stat_activity shows other
 *   roles' sessions without it, unless pg_read_all_stats): it may be the same session;
 * - no session recorded (a row from before 0008).
 *
 * Being taken for dead early is never a risk to exactly-once: a claim bumps the partition's epoch,
 * and the fenced commit of a process that was in fact alive fails, as after a lease expiry.
 */
export function goneSql(w: string, grace = ':goneGraceMs::int'): string {
  return `(${grace} is not null and ${w}.backend_pid is not null
    and ${w}.heartbeat_at < now() - ${grace} * interval '1 millisecond'
    and ${w}.backend_start >= pg_postmaster_start_time()
    and not exists (select 1 from pg_stat_activity a
                     where a.pid = ${w}.backend_pid and (a.backend_start is null or a.backend_start = ${w}.backend_start)))`;
}

/**
 * Whether the worker row `w` is live: a heartbeat younger than `sessionTimeout` by the server's
 * now() (every reader judges by one clock), and not gone ({@link goneSql} with `grace`). Both are
 * int expressions of milliseconds; a null session timeout makes the answer null (unknown) unless
 * the worker is gone.
 */
export function liveSql(w: string, sessionTimeout = ':sessionTimeoutMs::int', grace = ':goneGraceMs::int'): string {
  return `(${w}.heartbeat_at > now() - ${sessionTimeout} * interval '1 millisecond' and not ${goneSql(w, grace)})`;
}

/**
 * The grace by which a reader that runs no rounds (`oncely status`) judges the worker row `w`: the
 * one it recorded (0009), else two thirds of its session timeout. A worker of a version before
 * 0009 records none, and was otherwise never shown gone, only expired, while its peers had taken it
 * for gone long before. Two thirds is two rounds of the slowest heartbeat its session timeout
 * allows (heartbeatIntervalMs is at most a third of it), so it is shown gone no sooner than a peer
 * with that session timeout takes it for gone. Null (never gone) without a session timeout either.
 */
export function recordedGraceSql(w: string): string {
  return `coalesce(${w}.gone_grace_ms, ${w}.session_timeout_ms * 2 / 3)`;
}

/** A live worker as {@link heartbeatSql} returns it: its row and what it owns (topic → partitions). */
export interface LiveWorkerRow extends WorkerRow {
  owned: Record<string, number[]>;
}

import type { Statement } from './statement.js';

/** The values {@link heartbeatSql} binds. */
export interface HeartbeatParams {
  lockTimeout: string;
  group: string;
  workerId: string;
  host: string;
  pid: number;
  membership: 'static' | 'elastic';
  target: number | null;
  held: number;
  maxPartitions: number | null;
  weight: number;
  sessionTimeoutMs: number;
  /** The first heartbeat of this process: its start time is recorded. */
  starting: boolean;
  /** Rows silent this long are deleted. */
  forgetMs: number;
  /**
   * Workers whose heartbeat session is gone and whose heartbeat is older than this are dead (null:
   * only the session timeout counts); recorded with this worker's row, for readers that run no rounds.
   */
  goneGraceMs: number | null;
}

/**
 * A worker's heartbeat: one statement per round registers or refreshes the worker and returns the
 * group's live workers, the worker itself included. Live means a heartbeat younger than the
 * session timeout by the server's now(), so every worker judges liveness by one clock. The main
 * query reads the statement's snapshot, in which this worker's own row is still the old one (or
 * absent), so the worker comes from the upsert's `returning` instead.
 *
 * Each live worker comes with the partitions of the group it owns with a live lease (`owned`,
 * `{topic: [partition, …]}`), from the same snapshot as the live list: elastic workers keep what
 * they own (a sticky target), so they must read owners and live workers at one instant. The
 * partitions are read by the group's primary-key prefix, one row per partition of the group: every
 * elastic worker computes the whole group's assignment, so it needs every owner, not only its own
 * rows (1,000 partitions, 50 workers: 1,000 rows, 19 buffers a heartbeat). A static worker's
 * target is its list and reads no owners: its heartbeat skips the partitions (`owned` is empty),
 * a one-time filter the planner folds away with the bound membership.
 *
 * The heartbeat records the session it runs on (backend pid and start) and the grace it judges the
 * others by (`goneGraceMs`, two of its rounds), and a worker whose recorded session has ended is
 * left out of the live list after that grace (see {@link liveSql}).
 *
 * Rows of workers silent for `forgetMs` are deleted on the way (a Deployment's restarts leave one
 * per pod otherwise); `oncely status` shows a dead worker until then. The index workers_heartbeat
 * (0001) keeps both the delete and the live list a range scan.
 */
export function heartbeatSql(schema: string): Statement<HeartbeatParams, LiveWorkerRow> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout),
conn as (
  select pg_backend_pid() as backend_pid,
         (select a.backend_start from pg_stat_activity a where a.pid = pg_backend_pid()) as backend_start
),
beat as (
  insert into ${schema}.workers as w
    (group_id, worker_id, host, pid, membership, target, held, max_partitions, weight, session_timeout_ms, started_at,
     heartbeat_at, backend_pid, backend_start, gone_grace_ms)
  select :group, :workerId, :host, :pid::int, :membership, :target::int, :held::int, :maxPartitions::int, :weight::int,
         :sessionTimeoutMs::int, now(), now(), s.backend_pid, s.backend_start, :goneGraceMs::int
    from settings, conn s
  on conflict (group_id, worker_id) do update
    set host = excluded.host, pid = excluded.pid, membership = excluded.membership, target = excluded.target,
        held = excluded.held, max_partitions = excluded.max_partitions, weight = excluded.weight,
        session_timeout_ms = excluded.session_timeout_ms, heartbeat_at = now(),
        backend_pid = excluded.backend_pid, backend_start = excluded.backend_start, gone_grace_ms = excluded.gone_grace_ms,
        started_at = case when :starting::boolean then now() else w.started_at end
  returning ${WORKER_COLUMNS}
),
forgotten as (
  delete from ${schema}.workers
   where group_id = :group and heartbeat_at < now() - :forgetMs::int * interval '1 millisecond' and worker_id <> :workerId
),
by_topic as (
  select p.owner, p.topic, jsonb_agg(p.partition order by p.partition) as partitions
    from ${schema}.partitions p
   where :membership::text = 'elastic' and p.group_id = :group and p.owner is not null and p.lease_expires_at > now()
   group by p.owner, p.topic
),
owned as (
  select owner, jsonb_object_agg(topic, partitions) as owned from by_topic group by owner
)
select ${WORKER_COLUMNS}, coalesce(o.owned, '{}'::jsonb) as owned
  from ${schema}.workers w
  left join owned o on o.owner = w.worker_id
 where w.group_id = :group and w.worker_id <> :workerId and ${liveSql('w')}
union all
select b.*, coalesce(o.owned, '{}'::jsonb) as owned
  from beat b
  left join owned o on o.owner = b.worker_id`;
}

/**
 * A clean stop removes the worker's row, so the others leave it out of their targets at their next
 * round instead of after the session timeout.
 */
export function leaveSql(schema: string): Statement<{ lockTimeout: string; group: string; workerId: string }> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout)
delete from ${schema}.workers where group_id = :group and worker_id = :workerId and exists (select 1 from settings)`;
}
