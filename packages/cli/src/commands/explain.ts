import { ConfigError } from '@oncely/core';
import type { RecordHistory, RecordInKafka } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import { type ConnectionFlags, ExitCode } from '../config.js';
import { flags as addFlags } from '../flags.js';
import type { KafkaFlags } from '../kafka.js';
import { connectionOptions, JSON_FLAG, parseBigint, withAdmin } from '../options.js';
import { printJson, table } from '../output.js';

/** Flags of `oncely explain`. */
export interface ExplainFlags extends ConnectionFlags, KafkaFlags {
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
  'no-record': () =>
    'nothing to apply: Kafka holds no data record at this offset (a transaction marker, a record of an aborted transaction, or one removed by compaction); the position moved past it',
  'not-reached': () => 'not applied yet: the position is at or below it',
  'unknown-partition': () => 'not applied: the group has no stored position for this partition',
};

/** One line on what Kafka holds at the offset (the CLI and the console). */
export function inKafka(k: RecordInKafka): string {
  switch (k.kind) {
    case 'record':
      return `a data record, timestamp ${k.timestamp.toISOString()}, key ${k.keyBytes ?? 'null'} B, value ${k.valueBytes ?? 'null'} B`;
    case 'no-record':
      return `no data record at this offset${k.nextRecordOffset === null ? '' : ` (the next one is at ${k.nextRecordOffset})`}`;
    case 'deleted':
      return `deleted (the log starts at ${k.logStartOffset}): whether it was a data record cannot be told any more`;
    case 'not-yet':
      return `not written yet (high watermark ${k.highWatermark})`;
    case 'unknown':
      return `not checked: ${k.reason}`;
  }
}

function render(h: RecordHistory): string {
  const position = h.position
    ? `next offset ${h.position.nextOffset}, epoch ${h.position.epoch}, ${h.position.owner ? `owner ${h.position.owner}` : 'no owner'}`
    : '-';
  const head = [
    `record:    ${h.topic}/${h.partition}/${h.offset} in group ${h.group}`,
    `verdict:   ${VERDICT[h.state](h)}`,
    `position:  ${position}`,
    `in kafka:  ${inKafka(h.inKafka)}`,
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
  // Kafka is asked whether the offset holds a data record when brokers are given; the store's answer
  // stands alone otherwise (or when the brokers do not answer quickly).
  return withAdmin(flags, { kafka: 'optional' }, async (admin, _store, reach) => {
    const found = await admin.explain({ group, ...record });
    const history: RecordHistory =
      reach.kafkaUnavailable === undefined
        ? found
        : { ...found, inKafka: { kind: 'unknown', reason: `Kafka was not asked: ${reach.kafkaUnavailable}` } };
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
          "One record's history in a group: applied or not, in which batch, how many times, its dead letters and requeues, the resets that moved the position across it, and (with brokers) whether Kafka holds a data record at that offset",
        ),
      [{ flags: '--group <group>', description: 'the consumer group', required: true }, JSON_FLAG],
    ),
    true,
  ).action(async (ref: string, flags: ExplainFlags) => setCode(await explainCommand(ref, flags)));
}
