import { ConfigError } from '@oncely/core';
import type { OffsetsAdmin, PartitionStatus, WorkerStatus } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import type { ConnectionFlags } from '../config.js';
import { ExitCode } from '../config.js';
import { flags as addFlags } from '../flags.js';
import type { KafkaFlags } from '../kafka.js';
import { type AdminReach, connectionOptions, JSON_FLAG, withAdmin } from '../options.js';
import { human, printJson, table, toJsonLine } from '../output.js';

/** Flags of `oncely status`. */
export interface StatusFlags extends ConnectionFlags, KafkaFlags {
  group?: string;
  topic?: string;
  watch?: boolean;
  interval?: string;
  workers?: boolean;
  json?: boolean;
}

/** Who holds a partition, for people: "no owner" rather than a dash, since that is what matters. */
function ownerCell(r: PartitionStatus): string {
  if (r.owner === null) return r.nextOffset === null ? 'no owner (never claimed)' : 'no owner';
  return r.leaseLeftMs === 0 ? `${r.owner} (lease expired)` : r.owner;
}

/** A partition's state for people: stopped (where), else running with a live owner, else idle. */
function stateCell(r: PartitionStatus): string {
  if (r.stopped) return `stopped at ${r.stopped.offset}`;
  return r.owner !== null && r.leaseLeftMs !== 0 ? 'running' : 'idle';
}

/**
 * What an empty table means: no worker has run against this schema, or the --group or --topic
 * asked for names none of its groups (a typo, or another schema), which the groups there show.
 */
async function nothingStored(admin: OffsetsAdmin, flags: StatusFlags): Promise<string> {
  const schema = flags.schema ?? 'oncely';
  const groups = await admin.groups();
  const asked = [flags.group === undefined ? '' : `group ${flags.group}`, flags.topic === undefined ? '' : `topic ${flags.topic}`]
    .filter(Boolean)
    .join(', ');
  if (groups.length === 0 || asked === '') {
    return `no stored positions in schema ${schema} (has a worker run against it? --schema or ONCELY_SCHEMA names another)`;
  }
  const shown = groups.slice(0, 20).join(', ');
  const more = groups.length > 20 ? ` and ${groups.length - 20} more` : '';
  return `no stored positions for ${asked} in schema ${schema}; its groups: ${shown}${more}`;
}

function renderPartitions(rows: PartitionStatus[], kafkaUnavailable: string | undefined, empty: string): string {
  if (rows.length === 0) return empty;
  const unknown = kafkaUnavailable !== undefined;
  const totalLag = rows.reduce((a, r) => a + (r.lag ?? 0n), 0n);
  const orphans = rows.filter((r) => r.owner === null || r.leaseLeftMs === 0).length;
  const stopped = rows.filter((r) => r.stopped !== null);
  const deadLetters = rows.reduce((a, r) => a + r.deadLetters, 0);
  const totals = [
    `${rows.length} partition(s)`,
    unknown ? 'total lag unknown' : `total lag ${totalLag}`,
    ...(orphans > 0 ? [`${orphans} without a live owner`] : []),
    ...(stopped.length > 0 ? [`${stopped.length} stopped`] : []),
    ...(deadLetters > 0 ? [`${deadLetters} open dead letter(s) (oncely dlq list)`] : []),
  ].join(', ');
  const stops = stopped.map(
    (r) =>
      `${r.group} ${r.topic}:${r.partition} stopped at offset ${r.stopped!.offset} (${r.stopped!.at.toISOString()}): ${r.stopped!.error}`,
  );
  return `${table(
    [
      'GROUP',
      'TOPIC',
      'PARTITION',
      'NEXT-OFFSET',
      'HIGH-WATERMARK',
      'LAG',
      'STATE',
      'DEAD-LETTERS',
      'OWNER',
      'EPOCH',
      'LEASE-LEFT',
      'LAST-COMMIT',
    ],
    rows.map((r) => [
      r.group,
      r.topic,
      r.partition,
      r.nextOffset,
      unknown ? 'unknown' : r.highWatermark,
      unknown ? 'unknown' : r.lag,
      stateCell(r),
      r.deadLetters,
      ownerCell(r),
      r.epoch,
      r.owner === null ? null : r.leaseLeftMs === 0 ? 'expired' : human(r.leaseLeftMs),
      r.lastCommitAgeMs === null ? 'never' : `${human(r.lastCommitAgeMs)} ago`,
    ]),
  )}\n\n${totals}${stops.length > 0 ? `\n${stops.join('\n')}` : ''}${unknown ? `\n${kafkaNote(kafkaUnavailable)}` : ''}`;
}

/** The one line that says why high watermark and lag are unknown. */
function kafkaNote(why: string): string {
  return `Kafka not reached (${why}): high watermark and lag unknown; positions, owners and stops are from PostgreSQL`;
}

/**
 * A worker's state for people (the console shows the same): live; gone, and why, for a process
 * whose PostgreSQL session ended (its peers take its partitions over without waiting for the
 * session timeout); expired, silent past its session timeout; null when unknown.
 */
export function workerStateText(w: WorkerStatus): string | null {
  const last = `last heartbeat ${human(w.heartbeatAgeMs)} ago`;
  if (w.state === 'gone') return `gone (session ended, ${last})`;
  if (w.state === 'expired') return `expired (${last}, session timeout ${human(w.sessionTimeoutMs)})`;
  return w.state;
}

/** A worker's weight, where it has one: elastic workers share a group's partitions by weight. */
export function workerWeight(w: WorkerStatus): number | null {
  return w.membership === 'elastic' ? w.weight : null;
}

function renderWorkers(rows: WorkerStatus[]): string {
  if (rows.length === 0) return 'no registered workers';
  return table(
    ['GROUP', 'WORKER', 'HOST', 'PID', 'MEMBERSHIP', 'STATE', 'HEARTBEAT', 'OWNED', 'HELD', 'TARGET', 'WEIGHT'],
    rows.map((w) => [
      w.group,
      w.workerId,
      w.host,
      w.pid,
      w.membership,
      workerStateText(w),
      `${human(w.heartbeatAgeMs)} ago`,
      w.owned,
      w.held,
      w.target,
      workerWeight(w),
    ]),
  );
}

async function once(admin: OffsetsAdmin, flags: StatusFlags, watching: boolean, reach: AdminReach): Promise<void> {
  const workers = await admin.workers({ group: flags.group });
  const rows = flags.workers && flags.json ? [] : await admin.status({ group: flags.group, topic: flags.topic });
  if (flags.json) {
    // One JSON document (the partitions, or with --workers the workers); under --watch one per
    // line (NDJSON) so a script can read them as they come.
    const doc = flags.workers ? workers : rows;
    if (reach.kafkaUnavailable !== undefined && !flags.workers) process.stderr.write(`${kafkaNote(reach.kafkaUnavailable)}\n`);
    if (watching) process.stdout.write(`${toJsonLine(doc)}\n`);
    else printJson(doc);
    return;
  }
  const text = flags.workers
    ? renderWorkers(workers)
    : `${workers.length > 0 ? `${renderWorkers(workers)}\n\n` : ''}${renderPartitions(rows, reach.kafkaUnavailable, rows.length === 0 ? await nothingStored(admin, flags) : '')}`;
  if (watching && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
  process.stdout.write(`${watching ? `${new Date().toISOString()}\n` : ''}${text}\n${watching ? '\n' : ''}`);
}

/** `oncely status`: the registered workers, then positions, lag, owners and leases per group/topic/partition. */
export async function statusCommand(flags: StatusFlags): Promise<number> {
  const seconds = Number(flags.interval ?? 2);
  if (!Number.isFinite(seconds) || seconds < 0.2 || flags.interval?.trim() === '') {
    throw new ConfigError(`--interval must be a number of seconds, at least 0.2; got ${flags.interval}.`);
  }
  const intervalMs = Math.round(seconds * 1000);
  // Positions are in PostgreSQL: without Kafka, status still shows them (lag unknown).
  return withAdmin(flags, { kafka: 'optional' }, async (admin, _store, reach) => {
    if (!flags.watch) {
      await once(admin, flags, false, reach);
      return ExitCode.OK;
    }
    // --watch redraws until SIGINT/SIGTERM, which end it cleanly (exit 0).
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      while (!stop.signal.aborted) {
        await once(admin, flags, true, reach);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, intervalMs);
          stop.signal.addEventListener(
            'abort',
            () => {
              clearTimeout(t);
              resolve();
            },
            { once: true },
          );
        });
      }
      return ExitCode.OK;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}

/** Registers `oncely status`. */
export function registerStatus(program: Command, setCode: (code: number) => void): void {
  connectionOptions(
    addFlags(
      program
        .command('status')
        .description(
          'The workers (live, gone or expired, heartbeat, owned, held, target, weight), then per partition: position, high watermark, lag, state (stopped where), open dead letters, owner, epoch, lease left, last commit; without Kafka, lag is unknown',
        ),
      [
        { flags: '--group <group>', description: 'only this group (default: every group)' },
        { flags: '--topic <topic>', description: 'only this topic' },
        { flags: '--watch', description: 'redraw until interrupted' },
        { flags: '--workers', description: 'only the workers (with --json: the workers as JSON)' },
        { flags: '--interval <seconds>', description: 'redraw interval of --watch', default: '2' },
        { ...JSON_FLAG, description: 'JSON for scripts (NDJSON under --watch)' },
      ],
    ),
  ).action(async (flags: StatusFlags) => setCode(await statusCommand(flags)));
}
