-- oncely 0007: a worker's weight, with its heartbeat.
--
-- Elastic workers share a group's partitions in proportion to their weights (`weight`, --weight,
-- default 1): each worker reads the others' weights from the live list its heartbeat returns, so
-- that every worker computes the same target.
alter table :ONCELY_SCHEMA.workers
  add column weight int not null default 1 check (weight >= 1);
