-- oncely 0009: with its heartbeat, the grace after which a worker whose session ended is gone.
--
-- A worker is gone once its heartbeat's PostgreSQL session (0008) has ended and that heartbeat is
-- older than two of its rounds (see sql/workers.ts, goneSql). The workers judge each other by the
-- grace they were given; every heartbeat records it too, so that a reader that runs no rounds of
-- its own (`oncely status`, the console) applies the worker's own rule instead of waiting for the
-- session timeout. Null: the worker was given none (only the session timeout counts), or has not
-- heartbeated under 0009.
alter table :ONCELY_SCHEMA.workers
  add column gone_grace_ms int;
