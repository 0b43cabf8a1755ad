import { ConfigError } from '@oncely/core';
import type { ResetPlan, ResetTarget } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import { type ConnectionFlags, ExitCode } from '../config.js';
import { flags as addFlags, type FlagSpec } from '../flags.js';
import type { KafkaFlags } from '../kafka.js';
import {
  ACTOR_FLAG,
  connectionOptions,
  JSON_FLAG,
  parseBigint,
  parseDate,
  parseDuration,
  parseTopics,
  withAdmin,
} from '../options.js';
import { printJson, table } from '../output.js';

/** Flags of `oncely offsets reset`. */
export interface ResetFlags extends ConnectionFlags, KafkaFlags {
  group: string;
  topic?: string[];
  toOffset?: string;
  toEarliest?: boolean;
  toLatest?: boolean;
  toDatetime?: string;
  byDuration?: string;
  shiftBy?: string;
  toCheckpoint?: string;
  toTimeOfCommit?: string;
  execute?: boolean;
  json?: boolean;
  actor?: string;
}

/** Reads exactly one of the target flags, as kafka-consumer-groups does. */
export function resetTarget(f: ResetFlags): ResetTarget {
  const given: ResetTarget[] = [];
  if (f.toOffset !== undefined) given.push({ kind: 'offset', offset: parseBigint('--to-offset', f.toOffset) });
  if (f.toEarliest) given.push({ kind: 'earliest' });
  if (f.toLatest) given.push({ kind: 'latest' });
  if (f.toDatetime !== undefined) given.push({ kind: 'datetime', at: parseDate('--to-datetime', f.toDatetime) });
  if (f.byDuration !== undefined) given.push({ kind: 'duration', ms: parseDuration('--by-duration', f.byDuration) });
  if (f.shiftBy !== undefined) given.push({ kind: 'shift', by: parseBigint('--shift-by', f.shiftBy, true) });
  if (f.toCheckpoint !== undefined) given.push({ kind: 'checkpoint', name: f.toCheckpoint });
  if (f.toTimeOfCommit !== undefined)
    given.push({ kind: 'time-of-commit', at: parseDate('--to-time-of-commit', f.toTimeOfCommit) });
  if (given.length !== 1) {
    throw new ConfigError(
      `offsets reset needs exactly one of --to-offset, --to-earliest, --to-latest, --to-datetime, --by-duration, --shift-by, ` +
        `--to-checkpoint, --to-time-of-commit; got ${given.length}.`,
    );
  }
  return given[0]!;
}

/** A plan's columns, for the CLI's table and the console's. */
export const PLAN_COLUMNS = [
  'topic',
  'partition',
  'current',
  'new',
  'reprocess',
  'skip',
  'log start',
  'high watermark',
  'owner',
  'note',
];

/** One row per partition of a plan, in {@link PLAN_COLUMNS} order. */
export function planRows(plan: ResetPlan): Array<Array<string | number | bigint | null>> {
  return plan.entries.map((e) => [
    e.topic,
    e.partition,
    e.current,
    e.next,
    e.reprocess,
    e.skip,
    e.logStart,
    e.highWatermark,
    e.owner,
    e.note ?? (e.changes ? '' : 'unchanged'),
  ]);
}

/** Prints a plan for people: one line per partition, then what happened or what --execute would do. */
export function printPlan(plan: ResetPlan, verb = '--execute'): void {
  console.log(`group ${plan.group}: ${plan.description}`);
  console.log(
    table(
      PLAN_COLUMNS.map((c) => c.toUpperCase().replace(/ /g, '-')),
      planRows(plan),
    ),
  );
  const changing = plan.entries.filter((e) => e.changes).length;
  const clamped = plan.entries.filter((e) => e.clamped).length;
  if (clamped > 0) console.log(`${clamped} partition(s) clamped to the log's bounds [log start, high watermark].`);
  console.log(`${changing} partition(s) change; ${plan.reprocess} record(s) to reprocess, ${plan.skip} to skip.`);
  if (plan.executed) {
    console.log(
      `Applied in one transaction (admin_audit #${plan.auditId}); epochs bumped: running workers are fenced at their next ` +
        'commit or lease renewal and re-claim at the new positions.',
    );
  } else {
    console.log(`Dry run: nothing changed. Re-run with ${verb} to apply.`);
  }
}

async function resetCommand(flags: ResetFlags): Promise<number> {
  const to = resetTarget(flags);
  const request = { group: flags.group, topics: parseTopics(flags.topic), to };
  return withAdmin(flags, { kafka: true }, async (admin) => {
    const plan = flags.execute ? await admin.executeReset(request) : await admin.planReset(request);
    if (flags.json) printJson(plan);
    else printPlan(plan);
    return ExitCode.OK;
  });
}

interface CheckpointFlags extends ConnectionFlags {
  group: string;
  topic?: string[];
  json?: boolean;
  actor?: string;
}

async function checkpointCommand(action: string, name: string | undefined, flags: CheckpointFlags): Promise<number> {
  if (!['create', 'list', 'delete', 'show'].includes(action)) {
    throw new ConfigError(`offsets checkpoint takes create, list, show or delete; got ${action}.`);
  }
  if (action !== 'list' && !name) throw new ConfigError(`offsets checkpoint ${action} needs a NAME.`);
  return withAdmin(flags, { kafka: false }, async (admin) => {
    if (action === 'create') {
      const cp = await admin.createCheckpoint(name!, flags.group, { topics: flags.topic, actor: flags.actor });
      if (flags.json) printJson(cp);
      else console.log(`checkpoint ${cp.name} of group ${cp.group}: ${cp.partitions} partition(s) of ${cp.topics.join(', ')}`);
    } else if (action === 'list') {
      const list = await admin.listCheckpoints(flags.group);
      if (flags.json) printJson(list);
      else if (list.length === 0) console.log(`group ${flags.group} has no checkpoints`);
      else
        console.log(
          table(
            ['NAME', 'CREATED', 'PARTITIONS', 'TOPICS'],
            list.map((c) => [c.name, c.createdAt.toISOString(), c.partitions, c.topics.join(',')]),
          ),
        );
    } else if (action === 'show') {
      const rows = await admin.getCheckpoint(name!, flags.group);
      if (flags.json) printJson(rows);
      else
        console.log(
          table(
            ['TOPIC', 'PARTITION', 'NEXT-OFFSET'],
            rows.map((r) => [r.topic, r.partition, r.nextOffset]),
          ),
        );
    } else {
      const n = await admin.deleteCheckpoint(name!, flags.group, { actor: flags.actor });
      if (flags.json) printJson({ name, group: flags.group, deleted: n });
      else console.log(`deleted checkpoint ${name} of group ${flags.group} (${n} partition(s))`);
    }
    return ExitCode.OK;
  });
}

interface HistoryFlags extends ConnectionFlags {
  group: string;
  topic?: string;
  partition?: string;
  before?: string;
  limit?: string;
  json?: boolean;
}

async function historyCommand(flags: HistoryFlags): Promise<number> {
  const query = {
    group: flags.group,
    topic: flags.topic,
    partition: flags.partition === undefined ? undefined : Number(parseBigint('--partition', flags.partition)),
    before: flags.before === undefined ? undefined : parseDate('--before', flags.before),
    limit: flags.limit === undefined ? 50 : Number(parseBigint('--limit', flags.limit)),
  };
  return withAdmin(flags, { kafka: false }, async (admin) => {
    const rows = await admin.offsetHistory(query);
    if (flags.json) printJson(rows);
    else
      console.log(
        table(
          ['COMMITTED', 'TOPIC', 'PARTITION', 'FROM', 'TO', 'RECORDS', 'EPOCH', 'WORKER'],
          rows.map((r) => [
            r.committedAt.toISOString(),
            r.topic,
            r.partition,
            r.fromOffset,
            r.toOffset,
            r.recordCount,
            r.epoch,
            r.workerId,
          ]),
        ),
      );
    return ExitCode.OK;
  });
}

/** Registers `oncely offsets reset|checkpoint|history`. */
export function registerOffsets(program: Command, setCode: (code: number) => void): void {
  const offsets = program.command('offsets').description('Rewind, reset and checkpoint stored positions');
  // The target and --execute are never read from the environment: what changes is always typed.
  const target = (flags: string, description: string): FlagSpec => ({ flags, description, env: false });
  connectionOptions(
    addFlags(
      offsets
        .command('reset')
        .description('Plan (default) or --execute a reset of a group; flags follow kafka-consumer-groups --reset-offsets'),
      [
        { flags: '--group <group>', description: 'the group to reset', required: true },
        {
          flags: '--topic <topic[:partitions]>',
          description: 'topic, optionally partitions like 0,2,4-6 (repeatable; default: all stored)',
          repeatable: true,
        },
        target('--to-offset <n>', 'to this offset'),
        target('--to-earliest', "to the log's start"),
        target('--to-latest', 'to the high watermark (skips everything not yet applied)'),
        target('--to-datetime <iso>', 'to the first record at or after this time (from Kafka)'),
        target('--by-duration <PnDTnHnM>', 'to the first record at or after now minus this duration'),
        target('--shift-by <±n>', 'by this many offsets (negative rewinds)'),
        target('--to-checkpoint <name>', 'to a named checkpoint'),
        target('--to-time-of-commit <iso>', 'to the positions the group had committed at that moment (offset log)'),
        target('--execute', 'apply the plan (without it nothing changes)'),
        ACTOR_FLAG,
        JSON_FLAG,
      ],
    ),
  ).action(async (flags: ResetFlags) => setCode(await resetCommand(flags)));

  connectionOptions(
    addFlags(
      offsets
        .command('checkpoint')
        .description('Named positions: checkpoint create|show|delete NAME, checkpoint list')
        .argument('<action>', 'create | list | show | delete')
        .argument('[name]', 'checkpoint name'),
      [
        { flags: '--group <group>', description: 'the group', required: true },
        { flags: '--topic <topic>', description: 'create: only these topics (repeatable)', repeatable: true },
        ACTOR_FLAG,
        JSON_FLAG,
      ],
    ),
    false,
  ).action(async (action: string, name: string | undefined, flags: CheckpointFlags) =>
    setCode(await checkpointCommand(action, name, flags)),
  );

  connectionOptions(
    addFlags(offsets.command('history').description('Committed batches of a group, newest first (the offset log)'), [
      { flags: '--group <group>', description: 'the group', required: true },
      { flags: '--topic <topic>', description: 'only this topic' },
      { flags: '--partition <n>', description: 'only this partition' },
      { flags: '--before <iso>', description: 'only batches committed at or before this time' },
      { flags: '--limit <n>', description: 'at most this many rows', default: '50' },
      JSON_FLAG,
    ]),
    false,
  ).action(async (flags: HistoryFlags) => setCode(await historyCommand(flags)));
}
