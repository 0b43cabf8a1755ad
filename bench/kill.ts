/**
 * `pnpm bench:recovery --kill`: recovery speed after a real SIGKILL. One oncely worker process
 * (worker.ts, compiled, plain node, elastic membership: the runtime's default) drains a backlog
 * of `records` records; when the group has applied `killAt` of them it is SIGKILLed, and a new
 * worker process is started at once on the same group. Reported, all from the group's committed
 * positions (the offsets table) polled every 100 ms:
 *
 * - steady state: records/s over the last 10 s before the kill (or its second half, if shorter);
 * - the first `windowSec` (60) s after the restart, or until caught up if sooner (then it says so):
 *   records/s and their ratio to the steady state: the issue's target is ≥ 0.5;
 * - takeover: from the restart to the first record applied after it (a new process, its start,
 *   and the wait for the dead worker's leases and session to run out: leaseMs and
 *   sessionTimeoutMs, 15 s by default); and the rate from then on, against the steady state.
 *
 * The run is then checked for exactly-once: every record applied once (rows, or sums of balances).
 */
import { up } from '../scripts/services/index.js';
import { BuildError, buildForBench } from './build.js';
import { type OncelyConfig, READERS, type ReaderName } from './config.js';
import { totalCents } from './data.js';
import { BenchGroup, type Sample } from './group.js';
import { prepareTopic } from './produce.js';

const HANDLERS = ['message', 'batch-rows', 'batch-ledger'] as const;

export async function killRecovery(o: {
  records: number;
  partitions: number;
  batchMaxRecords: number;
  handler: string;
  reader: string;
  killAt: number;
  windowSec: number;
  /** leaseMs and sessionTimeoutMs of both workers (the heartbeat follows: a third of it, at most 3 s); default: the runtime's (15 s). */
  leaseMs?: number | undefined;
  /**
   * new: the restarted process has a new identity (a replacement pod, the runtime's default id), so
   * it waits for the dead one's lease; same: it restarts under the killed worker's id (a container
   * restart with ONCELY_WORKER_ID set to the pod's name), which reclaims its own partitions at once.
   */
  restartAs?: 'new' | 'same';
}): Promise<number> {
  if (!HANDLERS.includes(o.handler as OncelyConfig['handler'])) {
    console.error(`bench:recovery: --handler must be one of ${HANDLERS.join(', ')}; got ${o.handler}`);
    return 2;
  }
  if (!READERS.includes(o.reader as ReaderName)) {
    console.error(`bench:recovery: --reader must be one of ${READERS.join(', ')}; got ${o.reader}`);
    return 2;
  }
  if (!(o.killAt > 0 && o.killAt < 1) || !(o.windowSec > 0) || !Number.isInteger(o.records) || o.records < 1) {
    console.error('bench:recovery: --kill-at must be in (0, 1), --window > 0, --records a positive integer');
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
  try {
    buildForBench();
  } catch (e) {
    if (e instanceof BuildError) {
      console.error(e.message);
      return 1;
    }
    throw e;
  }
  const services = await up();
  const valueBytes = 150;
  const topic = `oncely-bench-${o.records}r-${o.partitions}p-${valueBytes}b`;
  await prepareTopic({
    brokers: services.kafka.brokers,
    topic,
    partitions: o.partitions,
    records: o.records,
    valueBytes,
    log: console.log,
  });
  const config: OncelyConfig = { handler: o.handler as OncelyConfig['handler'], reader: o.reader as ReaderName, fenced: true };
  const group = new BenchGroup({
    brokers: services.kafka.brokers,
    databaseUrl: services.postgres.url,
    topic,
    config,
    batchMaxRecords: o.batchMaxRecords,
    poolMax: Math.min(o.partitions, 6) + 2,
    timings: o.leaseMs === undefined ? undefined : { leaseMs: o.leaseMs, sessionTimeoutMs: o.leaseMs },
  });
  await group.open();
  try {
    const sameId = o.restartAs === 'same' ? `bench-recovery-${process.pid}` : undefined;
    const first = group.start({ ...(sameId ? { workerId: sameId } : {}) });
    await first.ready;
    const before = await group.follow({ records: Math.ceil(o.records * o.killAt), until: Number.POSITIVE_INFINITY });
    await first.kill();
    const killedAt = Date.now();
    const second = group.start({ ...(sameId ? { workerId: sameId } : {}) });
    const windowEnd = killedAt + o.windowSec * 1000;
    const after = await group.follow({ records: o.records, until: windowEnd });
    const inWindow = after[after.length - 1]!;
    // Then let it finish, for the exactly-once check.
    await group.follow({ records: o.records, until: Number.POSITIVE_INFINITY, everyMs: 250 });
    await second.stop();
    const check = await group.check({ records: o.records, totalCents: totalCents(o.records).toString() });

    const last = before[before.length - 1]!;
    const firstApplied = before.find((s) => s.applied > 0) ?? last;
    const span = Math.min(10_000, (last.at - firstApplied.at) / 2);
    const from = [...before].reverse().find((s) => s.at <= last.at - span) ?? firstApplied;
    const steady = rate(from, last);
    const atKill = after[0]!;
    const resumed = after.find((s) => s.applied > atKill.applied);
    const caughtUp = inWindow.applied >= o.records;
    const windowRate = rate({ ...atKill, at: killedAt }, inWindow);
    const seconds = (inWindow.at - killedAt) / 1000;
    const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
    console.log(
      `\nSIGKILL recovery: ${o.records.toLocaleString('en-US')} records in ${o.partitions} partitions, handler ${o.handler}, reader ${o.reader}, batchMaxRecords ${o.batchMaxRecords}, lease and session timeout ${o.leaseMs === undefined ? 'the defaults' : `${o.leaseMs} ms`}, restarted ${o.restartAs === 'same' ? 'under the same worker id' : 'as a new worker id'}, killed at ${fmt(last.applied)} applied`,
    );
    console.log(`  steady state before the kill   ${fmt(steady).padStart(9)} records/s (over ${(span / 1000).toFixed(1)} s)`);
    // A window cut short by the end of the backlog holds the takeover wait in a larger share: its
    // ratio is a lower bound of the full window's, so only a pass is conclusive then.
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
    } else console.log(`  takeover: no record applied within ${o.windowSec} s of the restart`);
    if (caughtUp)
      console.log(
        `  (the backlog ran out first: for a full ${o.windowSec} s window give --records above ${fmt(last.applied + steady * o.windowSec)})`,
      );
    console.log(`  exactly once: ${check.ok ? 'ok' : 'FAILED'}: ${check.check}`);
    return check.ok ? 0 : 1;
  } finally {
    await group.close();
  }
}

function rate(a: Sample, b: Sample): number {
  return b.at > a.at ? (b.applied - a.applied) / ((b.at - a.at) / 1000) : 0;
}
