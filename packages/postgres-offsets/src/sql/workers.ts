import { WORKER_COLUMNS, type WorkerRow } from './rows.js';

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
 * partitions are read by the group's primary-key prefix, one row per partition of the group.
 *
 * Rows of workers silent for `forgetMs` are deleted on the way (a Deployment's restarts leave one
 * per pod otherwise); `oncely status` shows a dead worker until then. The index workers_heartbeat
 * (0001) keeps both the delete and the live list a range scan.
 */
export function heartbeatSql(schema: string): Statement<HeartbeatParams, LiveWorkerRow> {
  return `
with settings as (select set_config('lock_timeout', :lockTimeout, true) as lock_timeout),
beat as (
  insert into ${schema}.workers as w
    (group_id, worker_id, host, pid, membership, target, held, max_partitions, weight, session_timeout_ms, started_at,
     heartbeat_at)
  select :group, :workerId, :host, :pid::int, :membership, :target::int, :held::int, :maxPartitions::int, :weight::int,
         :sessionTimeoutMs::int, now(), now()
    from settings
  on conflict (group_id, worker_id) do update
    set host = excluded.host, pid = excluded.pid, membership = excluded.membership, target = excluded.target,
        held = excluded.held, max_partitions = excluded.max_partitions, weight = excluded.weight,
        session_timeout_ms = excluded.session_timeout_ms, heartbeat_at = now(),
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
   where p.group_id = :group and p.owner is not null and p.lease_expires_at > now()
   group by p.owner, p.topic
),
owned as (
  select owner, jsonb_object_agg(topic, partitions) as owned from by_topic group by owner
)
select ${WORKER_COLUMNS}, coalesce(o.owned, '{}'::jsonb) as owned
  from ${schema}.workers w
  left join owned o on o.owner = w.worker_id
 where w.group_id = :group and w.heartbeat_at > now() - :sessionTimeoutMs::int * interval '1 millisecond'
   and w.worker_id <> :workerId
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
