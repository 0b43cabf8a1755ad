/**
 * The parent's side of the multi-process benchmarks (`pnpm bench:recovery --kill`, `pnpm bench:scale`):
 * a fresh table and offsets schema for one oncely group, worker processes (worker.ts, compiled,
 * plain node) to start, stop and SIGKILL, and how far the group is, read from the offsets table
 * (the sum of next_offset over its partitions: the topic's offsets start at 0 and are dense, so
 * that is the number of records applied).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { workerNodeFlags } from '@oncely/cli';
import { PostgresStore } from '@oncely/postgres-offsets';
import pg from 'pg';
import { compiled } from './build.js';
import type { OncelyConfig } from './config.js';
import { suffix } from './measure.js';
import { checkTable, createTable } from './scenarios/oncely-app.js';
import { dropSchema } from './scenarios/tables.js';
import type { ParentMessage, WorkerInput, WorkerMessage } from './worker.js';

export interface GroupSetup {
  brokers: string[];
  databaseUrl: string;
  topic: string;
  config: OncelyConfig;
  batchMaxRecords: number;
  fetchMaxBytesPerPartition?: number | undefined;
  /** Connections per worker's store. */
  poolMax: number;
  timings?: WorkerInput['timings'];
  /** Workers fetch nothing until {@link WorkerHandle.go} (bench:scale: the group settles first). */
  gated?: boolean;
}

export interface WorkerHandle {
  child: ChildProcess;
  /** Date.now() in the worker when start() resolved. */
  ready: Promise<number>;
  /** What the worker reports once stopped (rejects when it exits without reporting, e.g. killed). */
  final: Promise<{ cpuSec: number; peakRssMb: number; committed: number }>;
  /** The worker's `stats` messages so far (one a second: CPU since ready, records it committed). */
  stats: Array<{ at: number; cpuSec: number; committed: number }>;
  stop(): Promise<{ cpuSec: number; peakRssMb: number; committed: number }>;
  /** A CPU profile of the worker's main thread over the next `ms`, written to `file`; resolves once written. */
  profile(ms: number, file: string): Promise<string>;
  kill(): Promise<void>;
  /** Opens a gated worker's start gate. */
  go(): void;
  /** Whether the process has exited. */
  readonly exited: boolean;
}

export class BenchGroup {
  readonly group = `oncely-bench-group-${suffix()}`;
  readonly offsetsSchema = `bench_group_oncely_${suffix()}`;
  readonly dataSchema = `bench_group_data_${suffix()}`;
  table = '';
  readonly #client: pg.Client;
  readonly #workers = new Set<WorkerHandle>();
  #count = 0;

  constructor(readonly setup: GroupSetup) {
    this.#client = new pg.Client({ connectionString: setup.databaseUrl, application_name: 'oncely-bench-group' });
  }

  async open(): Promise<void> {
    await this.#client.connect();
    this.table = await createTable(this.#client, this.setup.config.handler, this.dataSchema);
    const store = new PostgresStore({ connectionString: this.setup.databaseUrl, schema: this.offsetsSchema, poolMax: 1 });
    try {
      await store.migrate();
    } finally {
      await store.close();
    }
  }

  /** Records the group has applied (its committed positions), and how its partitions are held. */
  async sample(): Promise<Sample> {
    const { rows } = await this.#client.query<{ n: string; held: string; owners: string; most: string | null }>(
      `select coalesce(sum(next_offset), 0)::text as n,
              count(owner)::text as held,
              count(distinct owner)::text as owners,
              (select max(c) from (select count(*) as c from ${this.offsetsSchema}.partitions
                 where group_id = $1 and topic = $2 and owner is not null group by owner) held)::text as most
         from ${this.offsetsSchema}.partitions where group_id = $1 and topic = $2`,
      [this.group, this.setup.topic],
    );
    const r = rows[0]!;
    return {
      at: Date.now(),
      applied: Number(r.n),
      held: Number(r.held),
      owners: Number(r.owners),
      most: Number(r.most ?? 0),
    };
  }

  /**
   * The batches the group committed between two instants (Date.now() values; offset_log's
   * committed_at is the server's clock, the same machine's): how many, their records, and when each
   * partition's first one after `from` committed.
   */
  async batches(from: number, to: number): Promise<BatchStats> {
    const { rows } = await this.#client.query<{ partition: number; batches: string; records: string; first_ms: string }>(
      `select partition, count(*)::text as batches, sum(record_count)::text as records,
              (extract(epoch from min(committed_at)) * 1000)::bigint::text as first_ms
         from ${this.offsetsSchema}.offset_log
        where group_id = $1 and topic = $2 and committed_at >= to_timestamp($3::float8 / 1000)
          and committed_at < to_timestamp($4::float8 / 1000)
        group by partition order by partition`,
      [this.group, this.setup.topic, from, to],
    );
    return {
      batches: rows.reduce((n, r) => n + Number(r.batches), 0),
      records: rows.reduce((n, r) => n + Number(r.records), 0),
      firstCommitAt: rows.map((r) => ({ partition: r.partition, at: Number(r.first_ms) })),
    };
  }

  /** Whether the records applied so far were applied once: the handler's count against the committed positions. */
  async checkApplied(): Promise<{ ok: boolean; check: string }> {
    const { applied } = await this.sample();
    const { handler } = this.setup.config;
    const { rows } = await this.#client.query<{ n: string | null }>(
      handler === 'batch-ledger'
        ? `select sum(records)::text as n from ${this.table}`
        : `select count(*)::text as n from ${this.table}`,
    );
    const n = Number(rows[0]!.n ?? 0);
    return {
      ok: n === applied,
      check: `${handler === 'batch-ledger' ? 'sum(records) of the balances' : 'rows'} ${n}, records committed (the positions) ${applied}`,
    };
  }

  check(expected: { records: number; totalCents: string }) {
    return checkTable(this.#client, this.setup.config.handler, this.table, expected);
  }

  /** Forks a worker; `workerId` names it (a restart under the same id, as a pod keeps its name). */
  start(opts: { workerId?: string } = {}): WorkerHandle {
    const s = this.setup;
    const input: WorkerInput = {
      brokers: s.brokers,
      databaseUrl: s.databaseUrl,
      topic: s.topic,
      group: this.group,
      offsetsSchema: this.offsetsSchema,
      table: this.table,
      config: s.config,
      batchMaxRecords: s.batchMaxRecords,
      fetchMaxBytesPerPartition: s.fetchMaxBytesPerPartition,
      poolMax: s.poolMax,
      timings: s.timings,
      gated: s.gated,
      name: `worker-${++this.#count}`,
      workerId: opts.workerId,
    };
    const child = fork(compiled('worker.ts'), [], {
      env: { ...process.env, BENCH_WORKER: JSON.stringify(input) },
      // The node flags `oncely run` starts a worker with.
      execArgv: workerNodeFlags([]),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let readyResolve!: (at: number) => void;
    let readyReject!: (e: Error) => void;
    const ready = new Promise<number>((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    });
    let finalResolve!: (f: { cpuSec: number; peakRssMb: number; committed: number }) => void;
    let finalReject!: (e: Error) => void;
    const final = new Promise<{ cpuSec: number; peakRssMb: number; committed: number }>((resolve, reject) => {
      finalResolve = resolve;
      finalReject = reject;
    });
    ready.catch(() => {});
    final.catch(() => {});
    let hasExited = false;
    const exited = new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        hasExited = true;
        const e = new Error(`${input.name} exited with ${code ?? signal}`);
        readyReject(e);
        finalReject(e);
        resolve();
      });
    });
    const stats: WorkerHandle['stats'] = [];
    const profiled = new Map<string, () => void>();
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') readyResolve(m.at);
      else if (m.type === 'stats') stats.push({ at: m.at, cpuSec: m.cpuSec, committed: m.committed });
      else if (m.type === 'profiled') profiled.get(m.file)?.();
      else if (m.type === 'final') finalResolve(m);
      else {
        readyReject(new Error(`${input.name} failed: ${m.error}`));
        finalReject(new Error(`${input.name} failed: ${m.error}`));
      }
    });
    const handle: WorkerHandle = {
      child,
      ready,
      final,
      stats,
      profile: (ms, file) =>
        new Promise<string>((resolve, reject) => {
          profiled.set(file, () => resolve(file));
          exited.then(() => reject(new Error(`${input.name} exited before its profile was written`)));
          child.send({ type: 'profile', ms, file } satisfies ParentMessage);
        }),
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.send('stop');
        try {
          return await final;
        } finally {
          await exited;
          this.#workers.delete(handle);
        }
      },
      kill: async () => {
        child.kill('SIGKILL');
        await exited;
        this.#workers.delete(handle);
      },
      go: () => {
        if (!hasExited) child.send('go');
      },
      get exited() {
        return hasExited;
      },
    };
    this.#workers.add(handle);
    return handle;
  }

  /** Polls {@link sample} until it reaches `records` or `until` (Date.now()) passes; returns the samples. */
  async follow(opts: { records: number; until: number; everyMs?: number; onSample?: (s: Sample) => boolean | undefined }) {
    const samples: Sample[] = [];
    for (;;) {
      const s = await this.sample();
      samples.push(s);
      if (s.applied >= opts.records || s.at >= opts.until || opts.onSample?.(s)) return samples;
      await new Promise((r) => setTimeout(r, opts.everyMs ?? 100));
    }
  }

  /** Stops (SIGKILL) every worker still running and drops what the group created. */
  async close(): Promise<void> {
    await Promise.all([...this.#workers].map((w) => w.kill()));
    await dropSchema(this.#client, this.dataSchema).catch(() => {});
    await dropSchema(this.#client, this.offsetsSchema).catch(() => {});
    await this.#client.end();
  }
}

export interface BatchStats {
  batches: number;
  records: number;
  /** Per partition that committed in the interval: its first commit in it (Date.now() scale). */
  firstCommitAt: Array<{ partition: number; at: number }>;
}

export interface Sample {
  at: number;
  applied: number;
  /** Partitions that have an owner. */
  held: number;
  /** Workers holding at least one partition, and the most partitions one of them holds. */
  owners: number;
  most: number;
}
