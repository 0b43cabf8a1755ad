import { ConfigError } from '@oncely/core';
import type { Command } from 'commander';
import { type ConnectionFlags, ExitCode } from '../config.js';
import { flags as addFlags } from '../flags.js';
import type { KafkaFlags } from '../kafka.js';
import { ACTOR_FLAG, connectionOptions, JSON_FLAG, parseDate, parseTopics, withAdmin } from '../options.js';
import { printJson } from '../output.js';
import { printPlan } from './offsets.js';

/** Flags of `oncely replay`. */
export interface ReplayFlags extends ConnectionFlags, KafkaFlags {
  fromGroup: string;
  group: string;
  topic?: string[];
  toCheckpoint?: string;
  toDatetime?: string;
  dryRun?: boolean;
  force?: boolean;
  json?: boolean;
  actor?: string;
}

async function replayCommand(flags: ReplayFlags): Promise<number> {
  if (flags.toCheckpoint !== undefined && flags.toDatetime !== undefined) {
    throw new ConfigError('replay takes at most one of --to-checkpoint and --to-datetime.');
  }
  const to =
    flags.toCheckpoint !== undefined
      ? { kind: 'checkpoint' as const, name: flags.toCheckpoint }
      : flags.toDatetime !== undefined
        ? { kind: 'datetime' as const, at: parseDate('--to-datetime', flags.toDatetime) }
        : undefined;
  return withAdmin(flags, { kafka: true }, async (admin) => {
    const plan = await admin.replayIntoGroup(
      { fromGroup: flags.fromGroup, group: flags.group, topics: parseTopics(flags.topic), to, force: flags.force },
      { execute: !flags.dryRun, actor: flags.actor },
    );
    if (flags.json) printJson(plan);
    else {
      printPlan(plan, 'no --dry-run');
      if (plan.executed) console.log(`Start workers of an app with group ${flags.group} to build the new projection.`);
    }
    return ExitCode.OK;
  });
}

/** Registers `oncely replay`. */
export function registerReplay(program: Command, setCode: (code: number) => void): void {
  connectionOptions(
    addFlags(
      program
        .command('replay')
        .description("Start a new group at another group's positions, one of its checkpoints, or a datetime"),
      [
        { flags: '--from-group <group>', description: 'the group whose positions (or checkpoint) to start from', required: true },
        { flags: '--group <group>', description: 'the new group (e.g. the next version of a projection)', required: true },
        { flags: '--topic <topic[:partitions]>', description: 'only these topics/partitions (repeatable)', repeatable: true },
        // Where the new group starts, and --force, are always typed (never from the environment).
        {
          flags: '--to-checkpoint <name>',
          description: 'start at this checkpoint of --from-group instead of its current positions',
          env: false,
        },
        { flags: '--to-datetime <iso>', description: 'start at the first record at or after this time (from Kafka)', env: false },
        { flags: '--dry-run', description: 'print the plan, change nothing' },
        { flags: '--force', description: 'allow a --group that already has stored positions (they are moved)', env: false },
        ACTOR_FLAG,
        JSON_FLAG,
      ],
    ),
  ).action(async (flags: ReplayFlags) => setCode(await replayCommand(flags)));
}
