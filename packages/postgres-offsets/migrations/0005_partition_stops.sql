-- oncely 0005: where a runner stopped a partition, for operators (`oncely status`).
--
-- A partition stops, claim kept and position unchanged, when a record failed for good under
-- onExhausted 'stop-partition' or a fetched batch cannot be read; until now only the stopping
-- process knew. The worker records it here; the next claim (a restart, another worker) and an
-- offsets reset clear it, since both make the partition run again.
alter table :ONCELY_SCHEMA.partitions
  add column stopped_offset bigint,
  add column stopped_error text,
  add column stopped_at timestamptz;
