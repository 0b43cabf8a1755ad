/**
 * Parameters of a `pnpm bench` run and the facts every scenario child needs. The orchestrator
 * (main.ts) parses the command line once and hands each child a frozen {@link ScenarioInput}.
 */
import type { MemoryAtPeak } from './measure.js';

/** The scenarios, in the order they run (the report numbers them from 1 in this order). */
export const SCENARIOS = [
  'kafkajs-raw',
  'pg-copy',
  'psql-copy',
  'naive',
  'oncely-message',
  'oncely-batch-rows',
  'oncely-batch-ledger',
  'oncely-batch-rows-unfenced',
  'platformatic-raw',
  'oncely-batch-ledger-platformatic',
  'kafkajs-json',
] as const;

export type ScenarioName = (typeof SCENARIOS)[number];

/** What the report calls each scenario. */
export const TITLES: Record<ScenarioName, string> = {
  'kafkajs-raw': '1. Kafka read ceiling: raw kafkajs eachBatch',
  'pg-copy': '2. Postgres write ceiling: COPY of pre-built buffers, 1 connection',
  'psql-copy': '3. Postgres write ceiling: psql \\copy of the same rows',
  naive: '4. naive at-least-once (eachMessage + INSERT, auto-commit)',
  'oncely-message': '5. oncely per-message (ctx.tx insert)',
  'oncely-batch-rows': '6. oncely batch, row per record (copyRows)',
  'oncely-batch-ledger': '7. oncely batch, ledger (1 upsert/batch)',
  'oncely-batch-rows-unfenced': '8. oncely batch, row per record, fence off',
  'platformatic-raw': '9. Kafka read ceiling: raw @platformatic/kafka consumer stream',
  'oncely-batch-ledger-platformatic': '10. oncely batch, ledger, platformatic reader (7 with the other reader)',
  'kafkajs-json': '11. read and parse: 1 with every value decoded by json()',
};

/** The number the report gives a scenario (its place in {@link SCENARIOS}, from 1). */
export function numberOf(s: ScenarioName): number {
  return SCENARIOS.indexOf(s) + 1;
}

/** The Kafka readers an oncely scenario can use (see scenarios/readers.ts). */
export const READERS = ['kafkajs', 'platformatic'] as const;
export type ReaderName = (typeof READERS)[number];

/** What an oncely worker scenario runs: its handler, the reader it fetches with, and whether commits are fenced. */
export interface OncelyConfig {
  /**
   * - message:      a message handler, one INSERT per record through ctx.tx;
   * - batch-rows:   a batch handler, one copyRows() (binary COPY in the transaction) of the batch's rows;
   * - batch-ledger: a batch handler adding the batch's amounts per account to balances (one upsert
   *                 of at most 1,000 rows).
   */
  handler: 'message' | 'batch-rows' | 'batch-ledger';
  reader: ReaderName;
  /** false: the store's benchmark-only unsafeUnfencedCommitsForBenchmarks (no epoch/position CAS, no fencing pre-check). */
  fenced: boolean;
}

/** The oncely scenarios and what each runs; a scenario not listed here is a baseline or a ceiling. */
export const ONCELY_SCENARIOS: Partial<Record<ScenarioName, OncelyConfig>> = {
  'oncely-message': { handler: 'message', reader: 'kafkajs', fenced: true },
  'oncely-batch-rows': { handler: 'batch-rows', reader: 'kafkajs', fenced: true },
  'oncely-batch-ledger': { handler: 'batch-ledger', reader: 'kafkajs', fenced: true },
  'oncely-batch-rows-unfenced': { handler: 'batch-rows', reader: 'kafkajs', fenced: false },
  'oncely-batch-ledger-platformatic': { handler: 'batch-ledger', reader: 'platformatic', fenced: true },
};

/**
 * The order of the scenarios in run `run` (from 1). The two scenarios of the fence's price, 6
 * (fenced) and 8 (the same with the fence off), run back to back, in alternating order: 6 then 8 in
 * odd runs, 8 then 6 in even ones (6 8 | 8 6 | 6 8 …), so that the ratio of a run compares
 * neighbours, and neither always runs first or after the same scenario. The others keep their
 * numbered order.
 */
export function runOrder(scenarios: readonly ScenarioName[], run: number): ScenarioName[] {
  const fenced = 'oncely-batch-rows';
  const unfenced = 'oncely-batch-rows-unfenced';
  if (!scenarios.includes(fenced) || !scenarios.includes(unfenced)) return [...scenarios];
  const pair: ScenarioName[] = run % 2 === 1 ? [fenced, unfenced] : [unfenced, fenced];
  return scenarios.flatMap((s) => (s === fenced ? pair : s === unfenced ? [] : [s]));
}

/** COPY data format of the pre-built-buffer ceiling (psql's \copy always uses text). */
export type CopyFormat = 'text' | 'binary';

/** Command-line parameters. */
export interface BenchArgs {
  /** Records produced and consumed (naive: at most `naiveRecords`). */
  records: number;
  partitions: number;
  /** Bytes of each record's JSON value (the key adds 9). */
  valueBytes: number;
  /** The oncely worker's batchMaxRecords. */
  batchMaxRecords: number;
  /** The oncely worker's fetchMaxBytesPerPartition (undefined = the runtime's default). */
  fetchMaxBytesPerPartition: number | undefined;
  /** Records the naive scenario processes (it is slow; its rate is what matters). */
  naiveRecords: number;
  /** Format of the pre-built COPY ceiling's buffers. */
  copyFormat: CopyFormat;
  /** The rows scenarios' json codec: lazy (the values go to jsonb as fetched, unparsed) or eager. */
  rowsCodec: 'lazy' | 'eager';
  scenarios: ScenarioName[];
  runs: number;
  quick: boolean;
  /** Per-stage timings in the oncely scenarios (reader, codec, handler and store are wrapped). */
  stages: boolean;
  /** `node --cpu-prof` for the oncely scenarios; summaries go to the report. */
  profile: boolean;
  /** Reuse a topic that already holds exactly these records (default: yes, by name). */
  topic: string | undefined;
  /** Node flags given to the oncely scenarios' workers after those `oncely run` adds (--node-flags). */
  nodeFlags: readonly string[];
}

/** What one scenario child is told. */
export interface ScenarioInput {
  scenario: ScenarioName;
  run: number;
  brokers: string[];
  databaseUrl: string;
  topic: string;
  partitions: number;
  /** Records in the topic. */
  records: number;
  /** key + value bytes of every record (all records have the same size). */
  recordBytes: number;
  valueBytes: number;
  /** Sum of the `cents` of all records, as a decimal string (the ledger check). */
  totalCents: string;
  batchMaxRecords: number;
  fetchMaxBytesPerPartition: number | undefined;
  naiveRecords: number;
  copyFormat: CopyFormat;
  rowsCodec: 'lazy' | 'eager';
  stages: boolean;
}

/** Per-stage timings of an oncely run (sums over all partitions, in ms). */
export interface StageTimings {
  /** Time inside reader.fetch() (long poll, network, wire decode), and how many calls. */
  fetchMs: number;
  fetches: number;
  /** Records the fetches returned (more than applied: the runtime refetches after a bounded-run cut). */
  fetchedRecords: number;
  /** Time inside store.runBatch(): one transaction each, summed over partitions. */
  txMs: number;
  transactions: number;
  /** Of txMs: the codec (JSON.parse), the handler itself, and the rest (BEGIN, fencing check, commit CAS, COMMIT). */
  decodeMs: number;
  handlerMs: number;
  storeMs: number;
  /** Per partition, time between two transactions (waiting for data or for the event loop), summed. */
  idleMs: number;
}

/** What one scenario child reports. */
export interface ScenarioResult {
  scenario: ScenarioName;
  run: number;
  ok: boolean;
  /** The scenario could not run here (e.g. psql is not installed): not a failure, and no figures. */
  skipped?: boolean;
  /** Why the run failed or was skipped, or what the check verified. */
  check: string;
  records: number;
  bytes: number;
  /** From process start of the child's work (connect) to the end, in ms. */
  wallMs: number;
  /** From "ready" (group joined / worker running / COPY started) to the last record applied, in ms. */
  activeMs: number;
  recordsPerSec: number;
  mbPerSec: number;
  commitP50Ms?: number;
  commitP99Ms?: number;
  commits?: number;
  /** Peak RSS of the child, from process.resourceUsage().maxRSS, in MB (MiB). */
  peakRssMb: number;
  /** What the RSS was made of at the highest of its samples (every 100 ms). */
  memoryAtPeak?: MemoryAtPeak;
  /**
   * CPU seconds (user + system) used during the active window by the process that does the
   * work: the child itself, or for psql's \copy the psql process. Not Kafka's or PostgreSQL's.
   */
  cpuSec: number;
  /** Of cpuSec, system time (the kernel's work for the process: sockets, page faults); absent for psql. */
  cpuSystemSec?: number;
  /** cpuSec per record, in µs (steadier than records/s on a shared machine). */
  cpuUsPerRecord: number;
  /** Event-loop utilization of the child over the active window (1 = the JS thread was never idle). */
  elu: number;
  stages?: StageTimings;
  /** The machine's 1-minute load average when the child started and ended (others' work skews figures). */
  loadStart: number;
  loadEnd: number;
}
