import { ConfigError } from '@oncely/core';
import { UNIQUE_VIOLATION } from '../errors.js';
import type { Rows } from '../sql/rows.js';
import { type AdminContext, audit, type Db, mapError, run, transaction } from './context.js';
import { nonEmpty } from './reset-plan.js';
import type { AuditOptions, CheckpointEntry, CheckpointSummary } from './types.js';

const CHECKPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;

/** The checkpoints columns both readers select (creating returns them), from `<schema>.checkpoints c`. */
const CHECKPOINT_COLUMNS = 'c.name, c.group_id, c.topic, c.partition, c.next_offset::text as next_offset, c.created_at';

interface CheckpointRow {
  name: string;
  group_id: string;
  topic: string;
  partition: number;
  next_offset: string;
  created_at: Date;
}

function decodeCheckpoint(r: CheckpointRow): CheckpointEntry {
  return {
    name: r.name,
    group: r.group_id,
    topic: r.topic,
    partition: r.partition,
    nextOffset: BigInt(r.next_offset),
    createdAt: r.created_at,
  };
}

/** Saves the group's current positions (optionally some topics) under a name. */
export async function createCheckpoint(
  ctx: AdminContext,
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
    return await transaction(ctx, async (trx) => {
      const { rows: created } = await trx.raw<Rows<CheckpointRow>>(
        `insert into ${ctx.s}.checkpoints as c (name, group_id, topic, partition, next_offset)
         select :name, group_id, topic, partition, next_offset from ${ctx.s}.partitions
          where group_id = :group and (:topics::text[] is null or topic = any(:topics::text[]))
         returning ${CHECKPOINT_COLUMNS}`,
        { name, group, topics: options.topics ?? null },
      );
      const rows = created.map(decodeCheckpoint);
      if (rows.length === 0) {
        throw new ConfigError(
          `Group ${group} has no stored positions${options.topics ? ` for ${options.topics.join(', ')}` : ''}; nothing to checkpoint.`,
        );
      }
      await audit(
        ctx,
        trx,
        'checkpoint.create',
        group,
        {
          name,
          partitions: rows.map((r) => ({ topic: r.topic, partition: r.partition, nextOffset: r.nextOffset.toString() })),
        },
        options,
      );
      return {
        name,
        group,
        createdAt: rows[0]!.createdAt,
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
    throw mapError(ctx, e, `create checkpoint ${name} of group ${group}`);
  }
}

/** The group's checkpoints, newest first. */
export async function listCheckpoints(ctx: AdminContext, group: string): Promise<CheckpointSummary[]> {
  nonEmpty('group', group);
  return run(ctx, `list checkpoints of group ${group}`, async () => {
    const { rows } = await ctx.knex.raw<Rows<{ name: string; created_at: Date; partitions: number; topics: string[] }>>(
      `select name, min(created_at) as created_at, count(*)::int as partitions, array_agg(distinct topic order by topic) as topics
         from ${ctx.s}.checkpoints where group_id = :group
        group by name order by min(created_at) desc, name`,
      { group },
    );
    return rows.map((r) => ({ name: r.name, group, createdAt: r.created_at, partitions: r.partitions, topics: r.topics }));
  });
}

/** One checkpoint's positions; ConfigError when it does not exist. */
export async function getCheckpoint(ctx: AdminContext, name: string, group: string): Promise<CheckpointEntry[]> {
  const rows = await checkpointRows(ctx, ctx.knex, name, group);
  if (rows.length === 0) throw noCheckpoint(name, group);
  return rows;
}

/** Deletes a checkpoint; ConfigError when it does not exist. Returns the number of partitions it held. */
export async function deleteCheckpoint(ctx: AdminContext, name: string, group: string, options: AuditOptions): Promise<number> {
  nonEmpty('checkpoint name', name);
  nonEmpty('group', group);
  return run(ctx, `delete checkpoint ${name} of group ${group}`, () =>
    transaction(ctx, async (trx) => {
      const { rows } = await trx.raw<Rows<{ topic: string }>>(
        `delete from ${ctx.s}.checkpoints where name = :name and group_id = :group returning topic`,
        { name, group },
      );
      if (rows.length === 0) throw noCheckpoint(name, group);
      await audit(ctx, trx, 'checkpoint.delete', group, { name, partitions: rows.length }, options);
      return rows.length;
    }),
  );
}

/** A checkpoint's rows, in order; empty when it does not exist. */
export async function checkpointRows(ctx: AdminContext, db: Db, name: string, group: string): Promise<CheckpointEntry[]> {
  nonEmpty('checkpoint name', name);
  nonEmpty('group', group);
  return run(ctx, `read checkpoint ${name}`, async () => {
    const { rows } = await db.raw<Rows<CheckpointRow>>(
      `select ${CHECKPOINT_COLUMNS} from ${ctx.s}.checkpoints c
        where c.name = :name and c.group_id = :group order by c.topic, c.partition`,
      { name, group },
    );
    return rows.map(decodeCheckpoint);
  });
}

/** The error for a checkpoint that does not exist, with the command that lists them. */
export function noCheckpoint(name: string, group: string): ConfigError {
  return new ConfigError(
    `No checkpoint ${name} for group ${group}; \`oncely offsets checkpoint list --group ${group}\` shows them.`,
  );
}
