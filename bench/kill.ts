/**
 * `pnpm bench:recovery --kill`: recovery speed after a real SIGKILL. One oncely worker process
 * (worker.ts, compiled, plain node, elastic membership: the runtime's default) drains a backlog;
 * `steadySec` (25) seconds after its first commit it is SIGKILLed, and a new worker process is
 * started at once on the same group. Reported, from the group's committed positions (the offsets
 * table) polled every 100 ms:
 *
 * - steady state: records/s over the time before the kill minus the first WARMUP_SEC (the start
 *   and the JIT's warm-up): 20 s by default;
 * - the first `windowSec` (60) s after the restart: records/s and their ratio to the steady state
 *   (the issue's target: ≥ 0.5). A backlog that runs out sooner cuts the window short: it says so,
 *   and how many `--records` a full window needs (it says that at the kill already);
 * - takeover: from the restart to the first record applied after it, and the rate from then on;
 * - per phase: the batches committed and their mean size (offset_log), the worker's CPU µs per
 *   record (its `stats` messages), when each partition's first commit after the restart came,
 *   and with `profile` a CPU profile of each worker's main thread over PROFILE_SEC s of each phase.
 *
 * Then the second worker stops cleanly and the run is checked for exactly-once: the records the
 * handler counted (sum of the balances' record counts, or rows) equal the committed positions; with
 * `drain` (or when the backlog ran out) it first applies the whole topic and checks every record
 * (sums of cents and counts, or rows) against what was produced.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type OncelyConfig, READERS, type ReaderName } from './config.js';
import { totalCents } from './data.js';
import { BenchGroup, type Sample, type WorkerHandle } from './group.js';
import { type ProfileSummary, summarizeProfile } from './profile.js';
import { benchTopic, build, Checkpoints, DEFAULT_VALUE_BYTES, prepareTopics, startServices } from './prologue.js';

const HANDLERS = ['message', 'batch-rows', 'batch-ledger'] as const;

/** Seconds after the first worker's first commit that the steady state leaves out: start-up and JIT warm-up. */
const WARMUP_SEC = 5;
/** Length of each CPU profile with `profile`, in seconds. */
const PROFILE_SEC = 15;
/**
 * The default backlog: the ledger handler on a quiet 2-core machine applies up to ~400,000
 * records/s in one worker process, so 25 s before the kill and 60 s after it need up to about 36
 * million; a faster machine gets a warning at the kill with the `--records` a full window needs.
 */
export const DEFAULT_KILL_RECORDS = 40_000_000;

export async function killRecovery(o: {
  records: number;
  partitions: number;
  batchMaxRecords: number;
  handler: string;
  reader: string;
  /** Seconds from the first worker's first commit to the kill (the steady state is all but the first WARMUP_SEC). */
  steadySec: number;
  windowSec: number;
  /** leaseMs and sessionTimeoutMs of both workers (the heartbeat follows: a third of it, at most 3 s); default: the runtime's (15 s). */
  leaseMs?: number | undefined;
  /**
   * new: the restarted process has a new identity (a replacement pod, the runtime's default id), so
   * it waits for the dead one's lease; same: it restarts under the killed worker's id (a container
   * restart with ONCELY_WORKER_ID set to the pod's name), which reclaims its own partitions at once.
   */
  restartAs?: 'new' | 'same';
  /** Apply the whole topic after the window and check every record (longer: the rest of the backlog). */
  drain?: boolean;
  /** A CPU profile of each worker over PROFILE_SEC s: before the kill, and from the first commit after the restart. */
  profile?: boolean;
}): Promise<number> {
  if (!HANDLERS.includes(o.handler as OncelyConfig['handler'])) {
    console.error(`bench:recovery: --handler must be one of ${HANDLERS.join(', ')}; got ${o.handler}`);
    return 2;
  }
  if (!READERS.includes(o.reader as ReaderName)) {
    console.error(`bench:recovery: --reader must be one of ${READERS.join(', ')}; got ${o.reader}`);
    return 2;
  }
  if (!(o.steadySec >= WARMUP_SEC + 5) || !(o.windowSec > 0) || !Number.isInteger(o.records) || o.records < 1) {
    console.error(`bench:recovery: --steady must be ≥ ${WARMUP_SEC + 5} s, --window > 0, --records a positive integer`);
    return 2;
  }
  if (o.profile && o.steadySec < WARMUP_SEC + PROFILE_SEC) {
    console.error(`bench:recovery: --profile needs --steady ≥ ${WARMUP_SEC + PROFILE_SEC} s`);
    return 2;
  }
  if (o.restartAs !== undefined && o.restartAs !== 'new' && o.restartAs !== 'same') {
    console.error(`bench:recovery: --restart-as must be new or same; got ${String(o.restartAs)}`);
    return 2;
  }
  if (o.leaseMs !== undefined && !(Number.isInteger(o.leaseMs) && o.leaseMs >= 1000)) {
    console.error('bench:recovery: --lease-ms must be an integer ≥ 1000 (the runtime minimum)');
    return 2;
  }
  if (!build()) return 1;
  const services = await startServices();
  const topic = benchTopic(o.records, o.partitions, DEFAULT_VALUE_BYTES);
  await prepareTopics(services.brokers, [
    { topic, partitions: o.partitions, records: o.records, valueBytes: DEFAULT_VALUE_BYTES },
  ]);
  const config: OncelyConfig = { handler: o.handler as OncelyConfig['handler'], reader: o.reader as ReaderName, fenced: true };
  const group = new BenchGroup({
    brokers: services.brokers,
    databaseUrl: services.databaseUrl,
    topic,
    config,
    batchMaxRecords: o.batchMaxRecords,
    poolMax: Math.min(o.partitions, 6) + 2,
    timings: o.leaseMs === undefined ? undefined : { leaseMs: o.leaseMs, sessionTimeoutMs: o.leaseMs },
  });
  // The topic's production (or the run before) leaves PostgreSQL dirty pages: written out now, not in the window.
  await new Checkpoints(services.databaseUrl).before();
  const profileDir = join(import.meta.dirname, 'results', `recovery-profiles-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  if (o.profile) mkdirSync(profileDir, { recursive: true });
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  await group.open();
  try {
    const sameId = o.restartAs === 'same' ? `bench-recovery-${process.pid}` : undefined;
    const first = group.start({ ...(sameId ? { workerId: sameId } : {}) });
    await first.ready;
    const started = await group.follow({ records: 1, until: Number.POSITIVE_INFINITY });
    const t0 = started[started.length - 1]!.at;
    const killAt = t0 + o.steadySec * 1000;
    const profiles: Array<{ phase: string; summary: ProfileSummary }> = [];
    const firstProfile = o.profile
      ? (async () => {
          await new Promise((r) => setTimeout(r, Math.max(0, killAt - PROFILE_SEC * 1000 - 500 - Date.now())));
          const file = await first.profile(PROFILE_SEC * 1000, join(profileDir, 'before-kill.cpuprofile'));
          profiles.push({ phase: `first worker, the last ${PROFILE_SEC} s before the kill`, summary: summarizeProfile(file) });
        })()
      : undefined;
    const cpu: ReturnType<typeof machineCpu>[] = [machineCpu()];
    const before = [
      ...started,
      ...(await group.follow({
        records: o.records,
        until: killAt,
        onSample: () => {
          cpu.push(machineCpu());
          return false;
        },
      })),
    ];
    await firstProfile;
    const last = before[before.length - 1]!;
    const steadyFrom = before.find((s) => s.at >= t0 + WARMUP_SEC * 1000) ?? before[0]!;
    const steady = rate(steadyFrom, last);
    const steadySpan = (last.at - steadyFrom.at) / 1000;
    const needed = last.applied + steady * (o.windowSec + 2) * 1.05;
    if (needed > o.records) {
      console.log(
        `bench:recovery: at the kill ${fmt(o.records - last.applied)} records are left, ${fmt(steady * o.windowSec)} at the ` +
          `steady rate for ${o.windowSec} s: the window will be cut short (give --records ${fmt(Math.ceil(needed / 1e6) * 1e6)})`,
      );
    }
    await first.kill();
    const killedAt = Date.now();
    // What the killed worker committed up to its death (it ran on after the last sample, while its profile was written).
    const atKill = await group.sample();
    const firstCpu = cpuPerRecord(first, steadyFrom.at, last.at);
    const second = group.start({ ...(sameId ? { workerId: sameId } : {}) });
    const windowEnd = killedAt + o.windowSec * 1000;
    let secondProfile: Promise<void> | undefined;
    let resumed: Sample | undefined;
    const after = await group.follow({
      records: o.records,
      until: windowEnd,
      onSample: (s) => {
        cpu.push(machineCpu());
        if (!resumed && s.applied > atKill.applied) {
          resumed = s;
          if (o.profile)
            secondProfile = second
              .profile(PROFILE_SEC * 1000, join(profileDir, 'after-restart.cpuprofile'))
              .then((file) => {
                profiles.push({
                  phase: `restarted worker, the first ${PROFILE_SEC} s after its first commit`,
                  summary: summarizeProfile(file),
                });
              })
              .catch((e: unknown) => console.error(`bench:recovery: no profile of the restarted worker: ${String(e)}`));
        }
        return false;
      },
    });
    await secondProfile;
    const inWindow = after[after.length - 1]!;
    const caughtUp = inWindow.applied >= o.records;
    const secondCpu = resumed ? cpuPerRecord(second, resumed.at, inWindow.at) : undefined;
    let check: { ok: boolean; check: string };
    if (o.drain || caughtUp) {
      await group.follow({ records: o.records, until: Number.POSITIVE_INFINITY, everyMs: 250 });
      await second.stop();
      check = await group.check({ records: o.records, totalCents: totalCents(o.records).toString() });
    } else {
      await second.stop();
      check = await group.checkApplied();
    }
    const steadyBatches = await group.batches(steadyFrom.at, last.at);
    const windowBatches = await group.batches(killedAt, inWindow.at);

    console.log(
      `\nSIGKILL recovery: ${fmt(o.records)} records in ${o.partitions} partitions, handler ${o.handler}, reader ${o.reader}, batchMaxRecords ${o.batchMaxRecords}, lease and session timeout ${o.leaseMs === undefined ? 'the defaults' : `${o.leaseMs} ms`}, restarted ${o.restartAs === 'same' ? 'under the same worker id' : 'as a new worker id'}, killed ${o.steadySec} s after the first commit at ${fmt(atKill.applied)} applied`,
    );
    console.log(
      `  steady state before the kill   ${fmt(steady).padStart(9)} records/s (over ${steadySpan.toFixed(1)} s, the first ${WARMUP_SEC} s left out)`,
    );
    // A window cut short by the end of the backlog holds the takeover wait in a larger share: its
    // ratio is a lower bound of the full window's, so only a pass is conclusive then.
    const windowRate = rate({ ...atKill, at: killedAt }, inWindow);
    const seconds = (inWindow.at - killedAt) / 1000;
    const ratio = windowRate / steady;
    const status = ratio >= 0.5 ? (caughtUp ? 'PASS (a lower bound)' : 'PASS') : caughtUp ? 'n/a (window cut short)' : 'MISS';
    console.log(
      `  first ${caughtUp ? `${seconds.toFixed(1)} s (caught up sooner than ${o.windowSec} s)` : `${o.windowSec} s`} after the restart ${fmt(windowRate).padStart(9)} records/s = ${ratio.toFixed(2)} × steady (target ≥ 0.5: ${status})`,
    );
    if (resumed) {
      const tail = rate(resumed, inWindow);
      console.log(
        `  takeover: first record applied ${((resumed.at - killedAt) / 1000).toFixed(1)} s after the restart; from then on ${fmt(tail)} records/s = ${(tail / steady).toFixed(2)} × steady`,
      );
      const firsts = windowBatches.firstCommitAt.map((f) => `${f.partition}: ${((f.at - killedAt) / 1000).toFixed(1)} s`);
      console.log(`  first commit per partition after the restart: ${firsts.join(', ')}`);
    } else console.log(`  takeover: no record applied within ${o.windowSec} s of the restart`);
    const perBatch = (b: { batches: number; records: number }) => (b.batches > 0 ? fmt(b.records / b.batches) : '–');
    console.log(
      `  batches: steady ${fmt(steadyBatches.batches)} of ${perBatch(steadyBatches)} records on average; after the restart ${fmt(windowBatches.batches)} of ${perBatch(windowBatches)}`,
    );
    const us = (c: { us: number; records: number } | undefined) =>
      c && c.records > 0 ? `${c.us.toFixed(1)} µs (${fmt(c.records)} records)` : '–';
    console.log(`  worker CPU per record: steady ${us(firstCpu)}; restarted worker from its first commit ${us(secondCpu)}`);
    // Records/s = CPU the worker got ÷ CPU per record: a worker that costs the same per record but
    // runs slower got less CPU, and the machine's figure says whether other processes took it.
    const cores = (c: { us: number; records: number } | undefined, from: number, to: number) =>
      c ? `the worker ${((c.us * c.records) / 1e6 / ((to - from) / 1000)).toFixed(2)}` : 'the worker –';
    const busy = (from: number, to: number) => {
      const b = machineBusy(cpu, from, to);
      return b === undefined ? 'the machine –' : `the machine ${b.toFixed(2)} of ${availableCores()}`;
    };
    console.log(
      `  cores busy: steady ${cores(firstCpu, steadyFrom.at, last.at)}, ${busy(steadyFrom.at, last.at)}; after the first commit ${resumed ? `${cores(secondCpu, resumed.at, inWindow.at)}, ${busy(resumed.at, inWindow.at)}` : '–'}`,
    );
    for (const p of profiles) {
      console.log(`  profile of the ${p.phase} (${p.summary.file}):`);
      for (const a of p.summary.areas.slice(0, 8))
        console.log(`    ${a.area.padEnd(28)} ${(a.share * 100).toFixed(1).padStart(5)}%  ${fmt(a.ms)} ms`);
    }
    if (caughtUp)
      console.log(
        `  (the backlog ran out first: for a full ${o.windowSec} s window give --records above ${fmt(atKill.applied + steady * o.windowSec)})`,
      );
    console.log(`  load average (1/5/15 min): ${(await loadAvg()).join(' / ')}`);
    console.log(`  exactly once: ${check.ok ? 'ok' : 'FAILED'}: ${check.check}`);
    return check.ok ? 0 : 1;
  } finally {
    await group.close();
  }
}

/** The machine's CPU time so far (all cores, /proc/stat, in seconds): busy (neither idle nor iowait) and in all; undefined without /proc. */
function machineCpu(): { at: number; busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    const idle = ticks[3]! + ticks[4]!;
    return { at: Date.now(), busy: (total - idle) / 100, total: total / 100 };
  } catch {
    return undefined;
  }
}

/** The cores busy on the whole machine between two instants, from the CPU samples nearest inside them. */
function machineBusy(cpu: ReturnType<typeof machineCpu>[], from: number, to: number): number | undefined {
  const samples = cpu.filter((c): c is NonNullable<typeof c> => c !== undefined);
  const a = samples.find((c) => c.at >= from);
  const b = [...samples].reverse().find((c) => c.at <= to);
  if (!a || !b || b.at <= a.at) return undefined;
  return (b.busy - a.busy) / ((b.at - a.at) / 1000);
}

function rate(a: Sample, b: Sample): number {
  return b.at > a.at ? (b.applied - a.applied) / ((b.at - a.at) / 1000) : 0;
}

/** The worker's CPU µs per record between two instants, from its `stats` messages nearest inside them. */
function cpuPerRecord(w: WorkerHandle, from: number, to: number): { us: number; records: number } | undefined {
  const a = w.stats.find((s) => s.at >= from);
  const b = [...w.stats].reverse().find((s) => s.at <= to);
  if (!a || !b || b.committed <= a.committed) return undefined;
  return { us: ((b.cpuSec - a.cpuSec) * 1e6) / (b.committed - a.committed), records: b.committed - a.committed };
}

function availableCores(): number {
  return availableParallelism();
}

async function loadAvg(): Promise<string[]> {
  const { loadavg } = await import('node:os');
  return loadavg().map((l) => l.toFixed(2));
}
