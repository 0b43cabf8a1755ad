import type { PartitionProgress } from '@oncely/core';
import { human } from './output.js';

/** Records done and to do in a bounded run: done = Σ(nextOffset − startOffset), total = Σ(target − startOffset). */
export function summarize(progress: PartitionProgress[]): { done: bigint; total: bigint } {
  let done = 0n;
  let total = 0n;
  for (const p of progress) {
    if (p.target === undefined) continue;
    const span = p.target > p.startOffset ? p.target - p.startOffset : 0n;
    const d = p.nextOffset > p.startOffset ? p.nextOffset - p.startOffset : 0n;
    total += span;
    done += d < span ? d : span; // a rewind under a bounded run must not read as more than 100%
  }
  return { done, total };
}

/** What a bounded run did, for its summary: offsets passed, records applied and dead-lettered, partitions stopped. */
export interface BoundedOutcome {
  done: bigint;
  total: bigint;
  applied: number;
  deadLettered: number;
  stopped: PartitionProgress[];
  caughtUp: boolean;
}

/**
 * Tallies a bounded run: it caught up only when every partition reached its target and none
 * stopped. Applied and dead-lettered records are counted apart: a run that dead-lettered
 * everything did not apply anything.
 */
export function outcomeOf(progress: PartitionProgress[]): BoundedOutcome {
  const { done, total } = summarize(progress);
  const stopped = progress.filter((p) => p.stopped !== undefined && !p.caughtUp);
  return {
    done,
    total,
    applied: progress.reduce((a, p) => a + p.committedRecords, 0),
    deadLettered: progress.reduce((a, p) => a + p.deadLetteredRecords, 0),
    stopped,
    caughtUp: stopped.length === 0 && progress.every((p) => p.caughtUp),
  };
}

/**
 * The summary line of a bounded run, e.g. `caught up: 25 applied, 127 dead-lettered (see oncely dlq
 * list), 0 partition(s) stopped; 152 of 152 offset(s) over 3 partition(s) of group g`. `interrupted`
 * names the signal that stopped a run before it caught up.
 */
export function summaryLine(o: BoundedOutcome, partitions: number, group: string, interrupted?: string): string {
  const head = o.caughtUp
    ? 'caught up'
    : interrupted
      ? `not caught up (stopped by ${interrupted})`
      : o.stopped.length > 0
        ? 'not caught up (partitions stopped)'
        : 'not caught up';
  const dead = o.deadLettered > 0 ? `${o.deadLettered} dead-lettered (see oncely dlq list)` : '0 dead-lettered';
  const stopped =
    o.stopped.length === 0
      ? '0 partition(s) stopped'
      : `${o.stopped.length} partition(s) stopped (${o.stopped
          .map((p) => `${p.topic}:${p.partition} at offset ${p.stopped!.offset}: ${p.stopped!.error}`)
          .join('; ')})`;
  return `${head}: ${o.applied} applied, ${dead}, ${stopped}; ${o.done} of ${o.total} offset(s) over ${partitions} partition(s) of group ${group}`;
}

/** One progress line: a bar on a TTY, logfmt-style fields otherwise. */
export function progressLine(done: bigint, total: bigint, elapsedMs: number, tty: boolean): string {
  const ratio = total === 0n ? 1 : Number(done) / Number(total);
  const rate = elapsedMs > 0 ? (Number(done) * 1000) / elapsedMs : 0;
  const left = Number(total - done);
  const eta = left <= 0 ? 0 : rate > 0 ? (left / rate) * 1000 : null;
  if (!tty) {
    return `progress done=${done} total=${total} percent=${(ratio * 100).toFixed(1)} rate=${rate.toFixed(0)}/s eta=${eta === null ? 'unknown' : human(eta)}`;
  }
  const width = 30;
  const filled = Math.min(width, Math.round(ratio * width));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} records ${(ratio * 100).toFixed(1)}%  ${rate.toFixed(0)} rec/s  ETA ${eta === null ? '?' : human(eta)}`;
}

/**
 * Reports a bounded run's progress on `stream` (stderr): a bar redrawn in place on a TTY, a plain
 * line per interval otherwise. Returns `stop()`, which prints the final state; `stop({ final:
 * false })` prints nothing more (and erases the bar): after a failure, the failure is the last
 * thing to read. Only the first call does anything.
 */
export function reportProgress(
  read: () => PartitionProgress[],
  options: { stream?: NodeJS.WriteStream; intervalMs?: number } = {},
): (opts?: { final?: boolean }) => void {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const started = Date.now();
  let last = '';
  const tick = (final: boolean) => {
    const { done, total } = summarize(read());
    const line = progressLine(done, total, Date.now() - started, tty);
    if (tty) stream.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else if (line !== last || final) stream.write(`${line}\n`);
    last = line;
  };
  const timer = setInterval(() => tick(false), options.intervalMs ?? (tty ? 250 : 2000));
  timer.unref();
  let stopped = false;
  return ({ final = true } = {}) => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    if (final) tick(true);
    else if (tty && last !== '') stream.write('\r\x1b[2K');
  };
}
