-- oncely 0004: what a worker reports with each heartbeat, for operators (`oncely status`).
--
-- Elastic membership writes the workers table (0001) on every heartbeat; these columns say how the
-- worker decides its partitions, the most it takes, and how many it targets and holds by its own reckoning, so that
-- an operator can see a worker that waits for partitions (target above held) or holds too many.
alter table :ONCELY_SCHEMA.workers
  add column membership text not null default 'static',
  add column target int,
  add column held int not null default 0,
  -- The most partitions it takes (maxPartitions): elastic workers respect each other's caps.
  add column max_partitions int,
  -- Its session timeout: status tells a live worker from a dead one by it, with the database's clock.
  add column session_timeout_ms int;
