-- oncely 0001: positions, ownership, history, dead letters, checkpoints, audit.
--
-- :ONCELY_SCHEMA is replaced by the configured schema (validated against ^[a-z_][a-z0-9_]{0,62}$
-- and quoted) before this file runs. Topic and group names are always values in these tables,
-- never identifiers. The migrator runs this file in one transaction under an advisory lock.

-- One row per group/topic/partition: the position (next offset to fetch), and who owns it.
create table :ONCELY_SCHEMA.partitions (
  group_id text not null,
  topic text not null,
  partition int not null check (partition >= 0),
  -- Kafka's convention: the next offset to fetch (last processed + 1, or past trailing control records).
  next_offset bigint not null check (next_offset >= 0),
  -- The fencing token: incremented by every claim and every rewind. A commit must present it.
  epoch bigint not null default 1,
  owner text,
  -- Compared against Postgres now() only: one clock for every worker.
  lease_expires_at timestamptz,
  -- The lease length of the current claim, so a commit can extend the lease without being told it.
  lease_ms int,
  -- The highest next_offset ever committed: records below it are replays (survives rewinds).
  max_committed_offset bigint,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (group_id, topic, partition)
);

-- Live workers of a group (elastic membership registers and heartbeats here).
create table :ONCELY_SCHEMA.workers (
  group_id text not null,
  worker_id text not null,
  host text not null,
  pid int not null,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  primary key (group_id, worker_id)
);
create index workers_heartbeat on :ONCELY_SCHEMA.workers (group_id, heartbeat_at);

-- One row per committed batch: audit trail and point-in-time rewind ("where was the group at T").
create table :ONCELY_SCHEMA.offset_log (
  id bigserial primary key,
  group_id text not null,
  topic text not null,
  partition int not null,
  from_offset bigint not null,
  to_offset bigint not null,
  record_count int not null,
  epoch bigint not null,
  worker_id text not null,
  committed_at timestamptz not null default clock_timestamp()
);
create index offset_log_point_in_time on :ONCELY_SCHEMA.offset_log (group_id, topic, partition, committed_at);

-- Records that failed for good, written in the transaction that moved the offset past them.
create table :ONCELY_SCHEMA.dead_letters (
  id bigserial primary key,
  group_id text not null,
  topic text not null,
  partition int not null,
  "offset" bigint not null,
  key bytea,
  value bytea,
  -- [{"name": "...", "value": "<base64>" | null}, ...] in wire order (names may repeat).
  headers jsonb not null default '[]',
  record_timestamp timestamptz,
  error_name text not null,
  error_message text not null,
  error_code text,
  error_stack text,
  attempts int not null,
  first_failed_at timestamptz not null,
  last_failed_at timestamptz not null,
  epoch bigint,
  worker_id text,
  created_at timestamptz not null default now(),
  replayed_at timestamptz
);
create index dead_letters_source on :ONCELY_SCHEMA.dead_letters (group_id, topic, partition, "offset");
create index dead_letters_pending on :ONCELY_SCHEMA.dead_letters (group_id, created_at) where replayed_at is null;

-- Named positions an operator can rewind to.
create table :ONCELY_SCHEMA.checkpoints (
  name text not null,
  group_id text not null,
  topic text not null,
  partition int not null,
  next_offset bigint not null,
  created_at timestamptz not null default now(),
  primary key (name, group_id, topic, partition)
);

-- Every operator action (rewind, reset, checkpoint, dead-letter replay): who, what, when.
create table :ONCELY_SCHEMA.admin_audit (
  id bigserial primary key,
  at timestamptz not null default now(),
  actor text not null,
  action text not null,
  group_id text,
  details jsonb not null default '{}'
);
create index admin_audit_at on :ONCELY_SCHEMA.admin_audit (at);
