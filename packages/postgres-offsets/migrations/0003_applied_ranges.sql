-- oncely 0003: tell replays from records a group never applied.
--
-- ctx.isReplay is true only for records the group applied before. Those are the offsets covered by
-- batches committed with records (offset_log rows with record_count > 0; dead letters, gap and
-- out-of-range moves commit 0 records), plus requeued dead letters. After a rewind, the runtime
-- asks once per claim for the applied ranges between its position and max_committed_offset: this
-- index makes that one range scan over the rewound part of the history, not over all of it.
-- (Building it locks offset_log against writes while it runs, once, when the migration applies.)
create index offset_log_applied on :ONCELY_SCHEMA.offset_log (group_id, topic, partition, to_offset)
  where record_count > 0;
