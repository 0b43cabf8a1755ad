-- oncely 0008: the PostgreSQL session of a worker's last heartbeat.
--
-- A worker killed with SIGKILL (or by the OOM killer) leaves its lease and its heartbeat to run
-- out: 15 s by default before another worker may take its partitions. Its sessions end at once
-- though: the kernel closes the dead process's sockets and each backend exits. Every heartbeat
-- records the backend it ran on (pg_backend_pid() and that backend's start time), so a peer can
-- see in pg_stat_activity that the session is gone and treat the worker as dead after a short
-- grace instead (see sql/workers.ts, goneSql). Null until the worker's first heartbeat under 0008.
alter table :ONCELY_SCHEMA.workers
  add column backend_pid int,
  add column backend_start timestamptz;
