import { ConfigError, type OffsetSpec } from '@oncely/core';
import type { Knex } from 'knex';
import { mapStoreError, UNIQUE_VIOLATION } from '../errors.js';
import type { OffsetLogEntry, OffsetLogQuery } from '../read/index.js';
import type { Rows } from '../sql/rows.js';
import { query, setLockTimeoutSql } from '../sql/statement.js';
import type { PostgresStore } from '../store/store.js';
import { defaultActor, writeAudit } from './audit.js';
import {
  checkTarget,
  describeTarget,
  type KafkaBounds,
  nonEmpty,
  planReset,
  type StoredPosition,
  scopeFrom,
  tp,
} from './reset-plan.js';
import type {
  AuditOptions,
  CheckpointEntry,
  CheckpointSummary,
  OffsetSource,
  OffsetsAdminOptions,
  PartitionStatus,
  PointInTimePosition,
  ReplayRequest,
  ResetPlan,
  ResetRequest,
  ResetTarget,
  TopicScope,
} from './types.js';

type Db = Knex | Knex.Transaction;

const CHECKPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;

/**
 * Operator actions on stored positions: status, resets (plan, then execute in one transaction),
 * checkpoints, offset history and replay into a new group. The `oncely` CLI is a thin layer over it.
 *
 * An executed reset locks the affected partition rows (`SELECT … FOR UPDATE`, in a stable order),
 * moves each position, **bumps each epoch and keeps the owner**, and writes an admin_audit row, all
 * in one transaction under `SET LOCAL lock_timeout`. A worker's commit CAS (epoch + position) either
 * committed before the lock (the reset then starts from the position it committed) or waits for the
 * reset and matches nothing (new epoch): it rolls back, and the worker, still the owner, re-claims at
 * the reset position. Running workers never need to be stopped.
 *
 * @example
 * const admin = new OffsetsAdmin({ store, kafka: reader });
 * const plan = await admin.planReset({ group: 'ledger', to: { kind: 'shift', by: -100n } });
 * await admin.executeReset({ group: 'ledger', to: { kind: 'shift', by: -100n } }, { actor: 'alice' });
 */
export class OffsetsAdmin {
  readonly #store: PostgresStore;
  readonly #kafka: OffsetSource | undefined;
  readonly #actor: string;
  readonly #s: string;
  readonly #lockTimeout: string;

  constructor(options: OffsetsAdminOptions) {
    if (!options?.store) throw new ConfigError('OffsetsAdmin needs a store: new OffsetsAdmin({ store: new PostgresStore(…) }).');
    this.#store = options.store;
    this.#kafka = options.kafka;
    this.#actor = options.actor ?? defaultActor();
    // The schema was validated by the store's options; it is the only identifier in these texts.
    this.#s = options.store.options.quotedSchema;
    this.#lockTimeout = String(options.store.options.lockTimeoutMs);
  }

  get #knex(): Knex {
    return this.#store.knex;
  }

  /** Groups with stored positions, sorted. */
  async groups(): Promise<string[]> {
    return this.#run('list groups', async () => {
      const { rows } = await this.#knex.raw<Rows<{ group_id: string }>>(
        `select distinct group_id from ${this.#s}.partitions order by group_id`,
      );
      return rows.map((r) => r.group_id);
    });
  }

  /**
   * Per group/topic/partition: position, high watermark and lag (when Kafka is configured), owner,
   * epoch, lease left and last commit age (both by the database's clock). Every group when none is given.
   */
  async status(query: { group?: string; topic?: string } = {}): Promise<PartitionStatus[]> {
    const rows = await this.#run('read status', async () => {
      const { rows } = await this.#knex.raw<
        Rows<{
          group_id: string;
          topic: string;
          partition: number;
          next_offset: string;
          epoch: string;
          owner: string | null;
          lease_left_ms: string | null;
          last_commit_at: Date | null;
          last_commit_age_ms: string | null;
          max_committed_offset: string | null;
        }>
      >(
        `select p.group_id, p.topic, p.partition, p.next_offset::text, p.epoch::text, p.owner,
                case when p.lease_expires_at is null then null
                     else greatest(0, floor(extract(epoch from (p.lease_expires_at - now())) * 1000))::bigint::text end as lease_left_ms,
                l.committed_at as last_commit_at,
                floor(extract(epoch from (now() - l.committed_at)) * 1000)::bigint::text as last_commit_age_ms,
                p.max_committed_offset::text
           from ${this.#s}.partitions p
           left join lateral (
             select o.committed_at from ${this.#s}.offset_log o
              where o.group_id = p.group_id and o.topic = p.topic and o.partition = p.partition
              order by o.committed_at desc limit 1
           ) l on true
          where (:group::text is null or p.group_id = :group::text) and (:topic::text is null or p.topic = :topic::text)
          order by p.group_id, p.topic, p.partition`,
        { group: query.group ?? null, topic: query.topic ?? null },
      );
      return rows;
    });
    const hw = new Map<string, bigint>();
    if (this.#kafka) {
      const byTopic = new Map<string, Set<number>>();
      for (const r of rows) byTopic.set(r.topic, (byTopic.get(r.topic) ?? new Set()).add(r.partition));
      for (const [topic, parts] of byTopic) {
        // A deleted topic shows without a high watermark instead of failing the whole status.
        const marks = await this.#kafka
          .highWatermarks(
            topic,
            [...parts].sort((a, b) => a - b),
          )
          .catch(() => new Map());
        for (const [p, o] of marks) hw.set(tp(topic, p), o);
      }
    }
    return rows.map((r) => {
      const nextOffset = BigInt(r.next_offset);
      const h = hw.get(tp(r.topic, r.partition)) ?? null;
      return {
        group: r.group_id,
        topic: r.topic,
        partition: r.partition,
        nextOffset,
        highWatermark: h,
        lag: h === null ? null : h > nextOffset ? h - nextOffset : 0n,
        owner: r.owner,
        epoch: BigInt(r.epoch),
        leaseLeftMs: r.lease_left_ms === null ? null : Number(r.lease_left_ms),
        lastCommitAt: r.last_commit_at,
        lastCommitAgeMs: r.last_commit_age_ms === null ? null : Number(r.last_commit_age_ms),
        highestCommitted: r.max_committed_offset === null ? null : BigInt(r.max_committed_offset),
      };
    });
  }

  /** What a reset would do, per partition; changes nothing. */
  async planReset(request: ResetRequest): Promise<ResetPlan> {
    const { scope, bounds } = await this.#prepare(request);
    return this.#run(`plan reset of group ${request.group}`, async () =>
      this.#plan(this.#knex, request, scope, bounds, await this.#storedRows(this.#knex, request.group, scope, false)),
    );
  }

  /**
   * Applies a reset in one transaction (plan recomputed under the row locks, so `shift` and the
   * current positions are exact), bumps each moved partition's epoch keeping its owner, and records
   * the action in admin_audit. Returns the plan as applied.
   */
  async executeReset(request: ResetRequest, options: AuditOptions = {}): Promise<ResetPlan> {
    return this.#executeReset(request, 'offsets.reset', options);
  }

  async #executeReset(request: ResetRequest, action: string, options: AuditOptions, extra: object = {}): Promise<ResetPlan> {
    const { scope, bounds } = await this.#prepare(request);
    return this.#run(`reset group ${request.group}`, () =>
      this.#knex.transaction(async (trx) => {
        await query(trx, setLockTimeoutSql, { lockTimeout: this.#lockTimeout });
        const stored = await this.#storedRows(trx, request.group, scope, true);
        const plan = await this.#plan(trx, request, scope, bounds, stored);
        const moves = plan.entries.filter((e) => e.changes && e.next !== null);
        if (moves.length > 0) {
          // Owner, lease and max_committed_offset are kept: ctx.isReplay stays right, and the owner
          // re-claims at the new position when its next commit or renewal finds the new epoch.
          await trx.raw(
            `insert into ${this.#s}.partitions as p (group_id, topic, partition, next_offset, epoch, updated_at)
             select :group, u.topic, u.partition, u.next_offset, 1, clock_timestamp()
               from unnest(:topics::text[], :partitions::int[], :nextOffsets::bigint[]) as u(topic, partition, next_offset)
             on conflict (group_id, topic, partition) do update
               set next_offset = excluded.next_offset, epoch = p.epoch + 1, updated_at = clock_timestamp()`,
            {
              group: request.group,
              topics: moves.map((e) => e.topic),
              partitions: moves.map((e) => e.partition),
              nextOffsets: moves.map((e) => e.next!.toString()),
            },
          );
        }
        const details = {
          ...extra,
          target: describeTarget(request.to),
          partitions: moves.map((e) => ({
            topic: e.topic,
            partition: e.partition,
            from: e.current === null ? null : e.current.toString(),
            to: e.next!.toString(),
            ...(e.clamped ? { clamped: e.clamped } : {}),
          })),
        };
        const audit = await this.#audit(trx, action, request.group, details, options);
        return { ...plan, executed: true, auditId: audit };
      }),
    );
  }

  /** Saves the group's current positions (optionally some topics) under a name. */
  async createCheckpoint(
    name: string,
    group: string,
    options: AuditOptions & { topics?: string[] } = {},
  ): Promise<CheckpointSummary> {
    if (typeof name !== 'string' || !CHECKPOINT_NAME.test(name)) {
      throw new ConfigError(
        `Checkpoint name must match ${CHECKPOINT_NAME} (letters, digits, . _ : -); got ${JSON.stringify(name)}.`,
      );
    }
    nonEmpty('group', group);
    try {
      return await this.#knex.transaction(async (trx) => {
        await query(trx, setLockTimeoutSql, { lockTimeout: this.#lockTimeout });
        const { rows } = await trx.raw<Rows<{ topic: string; partition: number; next_offset: string; created_at: Date }>>(
          `insert into ${this.#s}.checkpoints (name, group_id, topic, partition, next_offset)
           select :name, group_id, topic, partition, next_offset from ${this.#s}.partitions
            where group_id = :group and (:topics::text[] is null or topic = any(:topics::text[]))
           returning topic, partition, next_offset::text, created_at`,
          { name, group, topics: options.topics ?? null },
        );
        if (rows.length === 0) {
          throw new ConfigError(
            `Group ${group} has no stored positions${options.topics ? ` for ${options.topics.join(', ')}` : ''}; nothing to checkpoint.`,
          );
        }
        await this.#audit(
          trx,
          'checkpoint.create',
          group,
          {
            name,
            partitions: rows.map((r) => ({ topic: r.topic, partition: r.partition, nextOffset: r.next_offset })),
          },
          options,
        );
        return {
          name,
          group,
          createdAt: rows[0]!.created_at,
          partitions: rows.length,
          topics: [...new Set(rows.map((r) => r.topic))].sort(),
        };
      });
    } catch (e) {
      if ((e as { code?: unknown }).code === UNIQUE_VIOLATION) {
        throw new ConfigError(`Checkpoint ${name} already exists for group ${group}; delete it first or choose another name.`, {
          cause: e,
        });
      }
      throw this.#map(e, `create checkpoint ${name} of group ${group}`);
    }
  }

  /** The group's checkpoints, newest first. */
  async listCheckpoints(group: string): Promise<CheckpointSummary[]> {
    nonEmpty('group', group);
    return this.#run(`list checkpoints of group ${group}`, async () => {
      const { rows } = await this.#knex.raw<Rows<{ name: string; created_at: Date; partitions: number; topics: string[] }>>(
        `select name, min(created_at) as created_at, count(*)::int as partitions, array_agg(distinct topic order by topic) as topics
           from ${this.#s}.checkpoints where group_id = :group
          group by name order by min(created_at) desc, name`,
        { group },
      );
      return rows.map((r) => ({ name: r.name, group, createdAt: r.created_at, partitions: r.partitions, topics: r.topics }));
    });
  }

  /** One checkpoint's positions; ConfigError when it does not exist. */
  async getCheckpoint(name: string, group: string): Promise<CheckpointEntry[]> {
    const rows = await this.#checkpointRows(this.#knex, name, group);
    if (rows.length === 0) throw this.#noCheckpoint(name, group);
    return rows;
  }

  /** Deletes a checkpoint; ConfigError when it does not exist. Returns the number of partitions it held. */
  async deleteCheckpoint(name: string, group: string, options: AuditOptions = {}): Promise<number> {
    nonEmpty('checkpoint name', name);
    nonEmpty('group', group);
    return this.#run(`delete checkpoint ${name} of group ${group}`, () =>
      this.#knex.transaction(async (trx) => {
        await query(trx, setLockTimeoutSql, { lockTimeout: this.#lockTimeout });
        const { rows } = await trx.raw<Rows<{ topic: string }>>(
          `delete from ${this.#s}.checkpoints where name = :name and group_id = :group returning topic`,
          { name, group },
        );
        if (rows.length === 0) throw this.#noCheckpoint(name, group);
        await this.#audit(trx, 'checkpoint.delete', group, { name, partitions: rows.length }, options);
        return rows.length;
      }),
    );
  }

  /** Committed batches, newest first (the offset log). */
  offsetHistory(query: OffsetLogQuery): Promise<OffsetLogEntry[]> {
    return this.#store.offsetLog(query);
  }

  /** Operator actions recorded in admin_audit, newest first. */
  async auditLog(
    query: { group?: string; limit?: number } = {},
  ): Promise<Array<{ id: bigint; at: Date; actor: string; action: string; group: string | null; details: unknown }>> {
    return this.#run('read admin_audit', async () => {
      const { rows } = await this.#knex.raw<
        Rows<{ id: string; at: Date; actor: string; action: string; group_id: string | null; details: unknown }>
      >(
        `select a.id::text, at, actor, action, group_id, details from ${this.#s}.admin_audit a
          where (:group::text is null or group_id = :group::text) order by a.at desc, a.id desc limit :limit::int`,
        { group: query.group ?? null, limit: query.limit ?? 100 },
      );
      return rows.map((r) => ({
        id: BigInt(r.id),
        at: r.at,
        actor: r.actor,
        action: r.action,
        group: r.group_id,
        details: r.details,
      }));
    });
  }

  /**
   * Where the group stood at `at`: per partition, the position of the last batch committed at or
   * before it, unless an executed reset moved it later (still before `at`). A partition with no
   * commit by then gets the start of its first later batch ('initial').
   */
  async positionsAt(group: string, at: Date, db: Db = this.#knex): Promise<PointInTimePosition[]> {
    nonEmpty('group', group);
    const { rows: commits } = await db.raw<Rows<{ topic: string; partition: number; to_offset: string; committed_at: Date }>>(
      `select distinct on (topic, partition) topic, partition, to_offset::text, committed_at
         from ${this.#s}.offset_log where group_id = :group and committed_at <= :at
        order by topic, partition, committed_at desc, id desc`,
      { group, at },
    );
    const { rows: firsts } = await db.raw<Rows<{ topic: string; partition: number; from_offset: string }>>(
      `select distinct on (topic, partition) topic, partition, from_offset::text
         from ${this.#s}.offset_log where group_id = :group and committed_at > :at
        order by topic, partition, committed_at asc, id asc`,
      { group, at },
    );
    const { rows: resets } = await db.raw<Rows<{ at: Date; topic: string; partition: number; to_offset: string }>>(
      `select a.at, x.topic, x.partition, x."to" as to_offset
         from ${this.#s}.admin_audit a
         cross join jsonb_to_recordset(a.details -> 'partitions') as x(topic text, partition int, "to" text)
        where a.group_id = :group and a.action in ('offsets.reset', 'offsets.replay') and a.at <= :at and x."to" is not null
        order by a.at asc, a.id asc`,
      { group, at },
    );
    const out = new Map<string, PointInTimePosition>();
    for (const f of firsts) {
      out.set(tp(f.topic, f.partition), {
        topic: f.topic,
        partition: f.partition,
        nextOffset: BigInt(f.from_offset),
        source: 'initial',
        at: null,
      });
    }
    for (const c of commits) {
      out.set(tp(c.topic, c.partition), {
        topic: c.topic,
        partition: c.partition,
        nextOffset: BigInt(c.to_offset),
        source: 'commit',
        at: c.committed_at,
      });
    }
    for (const r of resets) {
      const k = tp(r.topic, r.partition);
      const prev = out.get(k);
      if (prev === undefined || prev.source === 'initial' || (prev.at !== null && r.at >= prev.at)) {
        out.set(k, { topic: r.topic, partition: r.partition, nextOffset: BigInt(r.to_offset), source: 'reset', at: r.at });
      }
    }
    return [...out.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  /** Plans (or, with `execute`, applies) starting `group` at another group's positions, checkpoint or a datetime. */
  async replayIntoGroup(request: ReplayRequest, options: AuditOptions & { execute?: boolean } = {}): Promise<ResetPlan> {
    nonEmpty('--from-group', request.fromGroup);
    nonEmpty('--group', request.group);
    if (request.fromGroup === request.group) {
      throw new ConfigError(`replay needs two different groups; --from-group and --group are both ${request.group}.`);
    }
    const existing = await this.#store.getPositions(request.group);
    if (existing.length > 0 && !request.force && options.execute) {
      throw new ConfigError(
        `Group ${request.group} already has ${existing.length} stored position(s); replay starts a new group. ` +
          'Use `oncely offsets reset` to move it, or pass force to overwrite its positions.',
      );
    }
    // The partitions replayed are the source's (or its checkpoint's), narrowed by topics.
    let sourceParts: Array<{ topic: string; partition: number }>;
    if (request.to?.kind === 'checkpoint') sourceParts = await this.getCheckpoint(request.to.name, request.fromGroup);
    else sourceParts = await this.#store.getPositions(request.fromGroup);
    if (sourceParts.length === 0) throw new ConfigError(`Group ${request.fromGroup} has no stored positions to replay from.`);
    const scope = scopeFrom(sourceParts, request.topics);
    const to: ResetTarget =
      request.to === undefined
        ? { kind: 'group', group: request.fromGroup }
        : request.to.kind === 'checkpoint'
          ? { kind: 'checkpoint', name: request.to.name, group: request.fromGroup }
          : { kind: 'datetime', at: request.to.at };
    const reset: ResetRequest = { group: request.group, topics: scope, to };
    if (!options.execute) return this.planReset(reset);
    return this.#executeReset(reset, 'offsets.replay', options, { fromGroup: request.fromGroup });
  }

  // ---------------------------------------------------------------------------------------------

  /** Resolves the partitions a reset covers and asks Kafka for the log bounds (outside any transaction). */
  async #prepare(request: ResetRequest): Promise<{ scope: TopicScope[]; bounds: KafkaBounds }> {
    nonEmpty('group', request?.group);
    checkTarget(request.to);
    const kafka = this.#needKafka('a reset');
    let scope: TopicScope[];
    if (request.topics && request.topics.length > 0) {
      scope = [];
      for (const t of request.topics) {
        nonEmpty('topic', t.topic);
        const all = await kafka.partitions(t.topic);
        const wanted = t.partitions ?? all;
        const unknown = wanted.filter((p) => !all.includes(p));
        if (unknown.length > 0) {
          throw new ConfigError(`Topic ${t.topic} has partitions ${all.join(',')}; no partition ${unknown.join(',')}.`);
        }
        scope.push({ topic: t.topic, partitions: [...new Set(wanted)].sort((a, b) => a - b) });
      }
    } else {
      const parts: Array<{ topic: string; partition: number }> = await this.#store.getPositions(request.group);
      if (request.to.kind === 'group') parts.push(...(await this.#store.getPositions(request.to.group)));
      if (request.to.kind === 'checkpoint') {
        parts.push(...(await this.getCheckpoint(request.to.name, request.to.group ?? request.group)));
      }
      if (parts.length === 0) {
        throw new ConfigError(`Group ${request.group} has no stored positions; name the partitions with --topic T[:partitions].`);
      }
      scope = scopeFrom(parts, undefined);
    }
    const bounds: KafkaBounds = { logStart: new Map(), highWatermark: new Map() };
    const spec: OffsetSpec | undefined =
      request.to.kind === 'datetime'
        ? { timestamp: request.to.at.getTime() }
        : request.to.kind === 'duration'
          ? { timestamp: Date.now() - request.to.ms }
          : undefined;
    if (spec) bounds.byTime = new Map();
    for (const s of scope) {
      const parts = s.partitions!;
      const [starts, ends] = await Promise.all([
        kafka.resolveOffsets(s.topic, parts, 'earliest'),
        kafka.highWatermarks(s.topic, parts),
      ]);
      for (const p of parts) {
        bounds.logStart.set(tp(s.topic, p), starts.get(p) ?? 0n);
        bounds.highWatermark.set(tp(s.topic, p), ends.get(p) ?? 0n);
      }
      if (spec) for (const [p, o] of await kafka.resolveOffsets(s.topic, parts, spec)) bounds.byTime!.set(tp(s.topic, p), o);
    }
    return { scope, bounds };
  }

  async #storedRows(db: Db, group: string, scope: TopicScope[], lock: boolean): Promise<Map<string, StoredPosition>> {
    const topics: string[] = [];
    const partitions: number[] = [];
    for (const s of scope) {
      for (const p of s.partitions!) {
        topics.push(s.topic);
        partitions.push(p);
      }
    }
    // FOR UPDATE in primary-key order: concurrent resets lock in the same order (no deadlock), and a
    // worker's in-flight CAS either finishes first or waits for us and then misses the new epoch.
    const { rows } = await db.raw<
      Rows<{ topic: string; partition: number; next_offset: string; epoch: string; owner: string | null }>
    >(
      `select p.topic, p.partition, p.next_offset::text, p.epoch::text, p.owner
         from ${this.#s}.partitions p
         join unnest(:topics::text[], :partitions::int[]) as u(topic, partition) on u.topic = p.topic and u.partition = p.partition
        where p.group_id = :group
        order by p.topic, p.partition${lock ? ' for update of p' : ''}`,
      { topics, partitions, group },
    );
    return new Map(
      rows.map((r) => [
        tp(r.topic, r.partition),
        { topic: r.topic, partition: r.partition, nextOffset: BigInt(r.next_offset), epoch: BigInt(r.epoch), owner: r.owner },
      ]),
    );
  }

  async #plan(
    db: Db,
    request: ResetRequest,
    scope: TopicScope[],
    bounds: KafkaBounds,
    stored: Map<string, StoredPosition>,
  ): Promise<ResetPlan> {
    const to = request.to;
    // Positions that come from the database are read here, inside the reset's transaction when executing.
    let fromDb: Map<string, bigint> | undefined;
    if (to.kind === 'checkpoint') {
      const rows = await this.#checkpointRows(db, to.name, to.group ?? request.group);
      if (rows.length === 0) throw this.#noCheckpoint(to.name, to.group ?? request.group);
      fromDb = new Map(rows.map((r) => [tp(r.topic, r.partition), r.nextOffset]));
    } else if (to.kind === 'time-of-commit') {
      fromDb = new Map((await this.positionsAt(request.group, to.at, db)).map((r) => [tp(r.topic, r.partition), r.nextOffset]));
    } else if (to.kind === 'group') {
      const { rows } = await db.raw<Rows<{ topic: string; partition: number; next_offset: string }>>(
        `select topic, partition, next_offset::text from ${this.#s}.partitions where group_id = :group`,
        { group: to.group },
      );
      fromDb = new Map(rows.map((r) => [tp(r.topic, r.partition), BigInt(r.next_offset)]));
    }
    return planReset(request, scope, bounds, stored, fromDb);
  }

  async #checkpointRows(db: Db, name: string, group: string): Promise<CheckpointEntry[]> {
    nonEmpty('checkpoint name', name);
    nonEmpty('group', group);
    return this.#run(`read checkpoint ${name}`, async () => {
      const { rows } = await db.raw<Rows<{ topic: string; partition: number; next_offset: string; created_at: Date }>>(
        `select topic, partition, next_offset::text, created_at from ${this.#s}.checkpoints
          where name = :name and group_id = :group order by topic, partition`,
        { name, group },
      );
      return rows.map((r) => ({
        name,
        group,
        topic: r.topic,
        partition: r.partition,
        nextOffset: BigInt(r.next_offset),
        createdAt: r.created_at,
      }));
    });
  }

  #audit(trx: Knex.Transaction, action: string, group: string, details: object, options: AuditOptions): Promise<bigint> {
    return writeAudit(trx, this.#s, { actor: options.actor ?? this.#actor, action, group, details });
  }

  #noCheckpoint(name: string, group: string): ConfigError {
    return new ConfigError(
      `No checkpoint ${name} for group ${group}; \`oncely offsets checkpoint list --group ${group}\` shows them.`,
    );
  }

  #needKafka(what: string): OffsetSource {
    if (!this.#kafka) {
      throw new ConfigError(
        `${what} needs Kafka (log start and high watermark): pass kafka (a PartitionReader) to OffsetsAdmin.`,
      );
    }
    return this.#kafka;
  }

  async #run<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.#map(e, action);
    }
  }

  #map(e: unknown, action: string) {
    return mapStoreError(e, action, this.#store.options.target, this.#store.options.lockTimeoutMs);
  }
}
