import { ConfigError } from '@oncely/core';
import type { RecordHistory } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import { type ConnectionFlags, ExitCode } from '../config.js';
import { flags as addFlags } from '../flags.js';
import { connectionOptions, JSON_FLAG, parseBigint, withAdmin } from '../options.js';
import { printJson, table } from '../output.js';

/** Flags of `oncely explain`. */
export interface ExplainFlags extends ConnectionFlags {
  group?: string;
  json?: boolean;
}

/** `topic/partition/offset`; a Kafka topic name has no `/`. */
export function parseRecordRef(ref: string): { topic: string; partition: number; offset: bigint } {
  const m = /^([^/]+)\/(\d+)\/(\d+)$/.exec(ref);
  if (!m)
    throw new ConfigError(
      `explain: name the record as <topic>/<partition>/<offset>, e.g. payments/3/1041; got ${JSON.stringify(ref)}.`,
    );
  const partition = Number(m[2]);
  if (!Number.isSafeInteger(partition) || partition > 2 ** 31 - 1)
    throw new ConfigError(`explain: partition ${m[2]} is out of range.`);
  return { topic: m[1]!, partition, offset: parseBigint('<offset>', m[3]!) };
}

const VERDICT: Record<RecordHistory['state'], (h: RecordHistory) => string> = {
  applied: (h) =>
    `applied ${h.timesApplied === 1 ? 'once' : `${h.timesApplied} times`}${h.timesApplied > 1 ? ' (the rewinds and replays below say why)' : ''}`,
  'dead-lettered': (h) =>
    `not applied: dead-lettered (${h.pendingDeadLetters.join(', ')}); \`oncely dlq show ${h.pendingDeadLetters[0]}\` shows why`,
  skipped: () => 'not applied: the position moved past it without a handler applying it (see below)',
  'not-reached': () => 'not applied yet: the position is at or below it',
  'unknown-partition': () => 'not applied: the group has no stored position for this partition',
};

function render(h: RecordHistory): string {
  const position = h.position
    ? `next offset ${h.position.nextOffset}, epoch ${h.position.epoch}, ${h.position.owner ? `owner ${h.position.owner}` : 'no owner'}`
    : '-';
  const head = [
    `record:    ${h.topic}/${h.partition}/${h.offset} in group ${h.group}`,
    `verdict:   ${VERDICT[h.state](h)}`,
    `position:  ${position}`,
  ].join('\n');
  if (h.events.length === 0) return `${head}\n\nno history: no batch, dead letter or reset of this group touched it`;
  return `${head}\n\n${table(
    ['AT', 'EVENT', 'WHAT'],
    h.events.map((e) => [e.at.toISOString(), e.kind, e.detail]),
  )}`;
}

/** `oncely explain <topic>/<partition>/<offset> --group G`: exit 0 whatever the verdict (it is an answer, not a check). */
export async function explainCommand(ref: string, flags: ExplainFlags): Promise<number> {
  const record = parseRecordRef(ref);
  if (!flags.group) throw new ConfigError('explain: name the group with --group (or ONCELY_GROUP).');
  const group = flags.group;
  return withAdmin(flags, { kafka: false }, async (admin) => {
    const history = await admin.explain({ group, ...record });
    if (flags.json) printJson(history);
    else process.stdout.write(`${render(history)}\n`);
    return ExitCode.OK;
  });
}

/** Registers `oncely explain`. */
export function registerExplain(program: Command, setCode: (code: number) => void): void {
  connectionOptions(
    addFlags(
      program
        .command('explain')
        .argument('<record>', 'the record as <topic>/<partition>/<offset>')
        .description(
          "One record's history in a group: applied or not, in which batch, how many times, its dead letters and requeues, and the resets that moved the position across it",
        ),
      [{ flags: '--group <group>', description: 'the consumer group', required: true }, JSON_FLAG],
    ),
    false,
  ).action(async (ref: string, flags: ExplainFlags) => setCode(await explainCommand(ref, flags)));
}
