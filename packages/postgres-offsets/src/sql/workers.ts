import { WORKER_COLUMNS, type WorkerRow } from './rows.js';
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
  sessionTimeoutMs: number;
  /** The first heartbeat of this process: its start time is recorded. */
  starting: boolean;
  /** Rows silent this long are deleted. */
  forgetMs: number;
}

/**
 * A worker's heartbeat: one statement per round registers or refreshes the worker and returns the
 * group's live workers, the worker itself included. Live means a heartbeat younger than the
 * session timeout by the server's now(), so every worker judges liveness by one clock. The main
 * query reads the statement's snapshot, in which this worker's own row is still the old one (or
 * absent), so the worker comes from the upsert's `returning` instead.
 *
 * Rows of workers silent for `forgetMs` are deleted on the way (a Deployment's restarts leave one
 * per pod otherwise); `oncely status` shows a dead worker until then. The index workers_heartbeat
 * (0001) keeps both the delete and the live list a range scan.
 */
export function heartbeatSql(schema: string): Statement<HeartbeatParams, WorkerRow> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout),
beat as (
  insert into ${schema}.workers as w
    (group_id, worker_id, host, pid, membership, target, held, max_partitions, session_timeout_ms, started_at, heartbeat_at)
  select :group, :workerId, :host, :pid::int, :membership, :target::int, :held::int, :maxPartitions::int,
         :sessionTimeoutMs::int, now(), now()
    from settings
  on conflict (group_id, worker_id) do update
    set host = excluded.host, pid = excluded.pid, membership = excluded.membership, target = excluded.target,
        held = excluded.held, max_partitions = excluded.max_partitions,
        session_timeout_ms = excluded.session_timeout_ms, heartbeat_at = now(),
        started_at = case when :starting::boolean then now() else w.started_at end
  returning ${WORKER_COLUMNS}
),
forgotten as (
  delete from ${schema}.workers
   where group_id = :group and heartbeat_at < now() - :forgetMs::int * interval '1 millisecond' and worker_id <> :workerId
)
select ${WORKER_COLUMNS}
  from ${schema}.workers w
 where w.group_id = :group and w.heartbeat_at > now() - :sessionTimeoutMs::int * interval '1 millisecond'
   and w.worker_id <> :workerId
union all
select * from beat`;
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
