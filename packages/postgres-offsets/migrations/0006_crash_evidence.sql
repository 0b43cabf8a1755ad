-- oncely 0006: the evidence that a record kills the worker process, not just the first record in flight.
--
-- 0002 counted an attempt at every record applied after an unclean hand-over, so any external kill
-- (the OOM killer, a node lost, SIGKILL after a grace period) was charged to an innocent record.
-- The runtime now writes, before the first transaction after such a hand-over, the range of offsets
-- it is about to apply: crash_offset .. crash_end (exclusive), with crash_attempts = the deaths seen
-- with that range in flight (this attempt included). Only a range in flight at repeated deaths is
-- narrowed (halved) and applied alone in the worker; crash_alone counts the consecutive deaths while
-- one single record was applied alone. A commit clears all four.
alter table :ONCELY_SCHEMA.partitions
  add column crash_end bigint,
  add column crash_alone int not null default 0;
