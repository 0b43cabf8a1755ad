-- oncely 0002: recognise a record that kills the worker process.
--
-- A worker that dies inside a batch cannot write anything about it: its transaction is gone. What
-- survives is that it never released its claim. The next claim of the partition records that as
-- `suspect`, and the runtime then applies the next records one at a time, counting each attempt
-- here (outside the batch transaction) before running the handler. A record whose attempts exceed
-- the crash budget is dead-lettered instead of crashing the worker again. A commit clears all three.
alter table :ONCELY_SCHEMA.partitions
  add column suspect boolean not null default false,
  add column crash_offset bigint,
  add column crash_attempts int not null default 0;
