/**
 * One oncely worker process of `pnpm bench:recovery --kill` and `pnpm bench:scale`: forked from
 * the compiled bench (plain node, the packages' dist/) with a {@link WorkerInput} in BENCH_WORKER,
 * it runs the app of oncely-app.ts unbounded, with the runtime's default membership (elastic:
 * the live workers of the group share its partitions), until the parent says `stop` over IPC
 * (or kills it). It sends `ready` when start() has resolved, `stats` every second (CPU since ready,
 * or since `go` when gated, and records it committed, so that the parent knows the CPU per record
 * of a worker it SIGKILLs) and `final` (CPU from ready, or from `go` when gated, to the `stop`
 * request; peak RSS; records it committed) once stopped. How far the group is comes from the
 * offsets table, which the parent reads.
 *
 * Gated (bench:scale), its reader returns nothing until the parent says `go` (gate.ts): the
 * workers join and share the partitions first, then all start applying at once.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { consoleLogger, createWorker, json } from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import type { OncelyConfig } from './config.js';
import { StartGate } from './gate.js';
import { peakRssMb } from './measure.js';
import { benchApp, type Payment } from './scenarios/oncely-app.js';
import { makeReader } from './scenarios/readers.js';

export interface WorkerInput {
  brokers: string[];
  databaseUrl: string;
  topic: string;
  group: string;
  offsetsSchema: string;
  table: string;
  config: OncelyConfig;
  batchMaxRecords: number;
  fetchMaxBytesPerPartition: number | undefined;
  poolMax: number;
  name: string;
  /** The worker's id in claims and heartbeats; default: the runtime's (host-pid-random, new per process). */
  workerId?: string | undefined;
  /** Membership timings, when not the runtime's defaults (bench:recovery --lease-ms). */
  timings?: { leaseMs: number; sessionTimeoutMs: number } | undefined;
  /** Fetch nothing until the parent sends `go` (see gate.ts). */
  gated?: boolean | undefined;
}

export type WorkerMessage =
  | { type: 'ready'; at: number }
  | { type: 'stats'; at: number; cpuSec: number; committed: number }
  | { type: 'final'; cpuSec: number; peakRssMb: number; committed: number }
  | { type: 'failed'; error: string }
  | { type: 'profiled'; file: string };

/** What the parent may send besides `stop`: profile the main thread for `ms` into `file` (a .cpuprofile). */
export type ParentMessage = { type: 'profile'; ms: number; file: string };

/** A CPU profile of this process's main thread over `ms`, taken in-process (a SIGKILLed worker never writes --cpu-prof's). */
async function profile(ms: number, file: string): Promise<void> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await new Promise((r) => setTimeout(r, ms));
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
  } finally {
    session.disconnect();
  }
}

async function main(): Promise<void> {
  const input = JSON.parse(process.env.BENCH_WORKER ?? 'null') as WorkerInput | null;
  if (!input) throw new Error('bench/worker.ts is started by bench:recovery or bench:scale (BENCH_WORKER is not set)');
  const send = (m: WorkerMessage) =>
    new Promise<void>((resolve) => {
      process.send!(m, () => resolve());
    });
  const logger = consoleLogger({ level: 'warn' });
  const store = new PostgresStore({
    connectionString: input.databaseUrl,
    schema: input.offsetsSchema,
    poolMax: input.poolMax,
    applicationName: `oncely-bench-${input.name}`,
    unsafeUnfencedCommitsForBenchmarks: !input.config.fenced,
  });
  const app = benchApp({
    group: input.group,
    topic: input.topic,
    handler: input.config.handler,
    table: input.table,
    codec: json<Payment>(),
  });
  const gate = input.gated ? new StartGate() : undefined;
  const reader = makeReader(input.config.reader, input.brokers, logger);
  const worker = createWorker(app, {
    store,
    reader: gate ? gate.reader(reader) : reader,
    logger,
    batchMaxRecords: input.batchMaxRecords,
    ...(input.workerId ? { workerId: input.workerId } : {}),
    ...(input.timings ?? {}),
    ...(input.fetchMaxBytesPerPartition ? { fetchMaxBytesPerPartition: input.fetchMaxBytesPerPartition } : {}),
  });
  let committed = 0;
  worker.on('commit', (c) => {
    committed += c.records;
  });
  let stopping = false;
  let cpu0 = process.cpuUsage();
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // The work ends when the parent asks: the stop itself (hand-back, pool close) is not billed.
    const cpu = process.cpuUsage(cpu0);
    await worker.stop();
    await send({ type: 'final', cpuSec: (cpu.user + cpu.system) / 1e6, peakRssMb: peakRssMb(), committed });
    process.exit(0);
  };
  process.on('message', (m: 'stop' | 'go' | ParentMessage) => {
    if (m === 'stop') void stop();
    else if (m === 'go') {
      if (gate && !gate.isOpen) {
        cpu0 = process.cpuUsage();
        gate.open();
      }
    } else if (m.type === 'profile')
      void profile(m.ms, m.file).then(
        () => send({ type: 'profiled', file: m.file }),
        (e: unknown) => console.error('bench worker: profile failed', e),
      );
  });
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  worker.done.catch(async (e: unknown) => {
    await send({ type: 'failed', error: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  });
  await worker.start();
  cpu0 = process.cpuUsage();
  await send({ type: 'ready', at: Date.now() });
  const stats = setInterval(() => {
    const cpu = process.cpuUsage(cpu0);
    if (!stopping) process.send!({ type: 'stats', at: Date.now(), cpuSec: (cpu.user + cpu.system) / 1e6, committed });
  }, 1000);
  stats.unref();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
