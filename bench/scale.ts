/**
 * `pnpm bench:scale`: how oncely scales out and how its cost grows with the records, in one run.
 * One factor at a time around a base of 1 worker process, 6 partitions, 150-byte values:
 *
 * - workers:    1, 2, 3 worker processes on one group (elastic membership, the runtime's default:
 *               the live workers share the partitions), 6 partitions;
 * - partitions: 6, 24, 96 partitions, 1 worker;
 * - sizes:      values of 150 B, 1 KiB, 10 KiB (keys add 9), 1 worker, 6 partitions;
 *
 * each with the ledger and the row-per-record handlers (scenarios 7 and 6 of `pnpm bench`). The
 * topics are prepared first (produced once, reused by later runs with the same parameters). Every
 * cell is a cold start (fresh group, offsets schema and table) with worker processes of
 * bench/worker.ts (compiled, plain node, the packages' dist/), gated (gate.ts): the workers join,
 * claim and hand off until the group has settled (every partition held, by all N workers, none
 * holding more than ⌈P/N⌉), then all start applying at once, so that the window is the settled
 * group's steady state. Each cell is checked for exactly-once at the end (rows or sums of balances,
 * the group's positions, and the records the workers committed, summed), and fails rather than
 * hangs: a worker that exits, a group that makes no progress for --stall seconds.
 *
 * Figures, from the group's committed positions polled every 100 ms: records/s from 10% to 90% of
 * the records applied (start and uneven tail left out; the whole window's rate is in the JSON),
 * MB/s of keys and values, CPU µs per record summed over the workers (each worker's user + system
 * CPU from the gate's opening to the stop request, ÷ records), the machine's busy cores over the
 * window (from /proc/stat: Kafka, PostgreSQL and the workers together), and the seconds the group
 * took to settle.
 *
 * Records: --records (1,000,000, as `pnpm bench`, whose topic it reuses) of 150 B; the larger
 * values get fewer records so that a run moves a similar volume (1 KiB: a third, 10 KiB: a
 * fifteenth), at least 10,000. Results: bench/results/scale-*.json|md.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type OncelyConfig, READERS, type ReaderName } from './config.js';
import { KEY_BYTES, totalCents, valueBytesOf } from './data.js';
import { BenchGroup, type Sample, type WorkerHandle } from './group.js';
import { benchTopic, build, Checkpoints, prepareTopics, startServices } from './prologue.js';

const here = dirname(fileURLToPath(import.meta.url));

const usage = `usage: pnpm bench:scale [options]
  --records N        records of 150-byte values per run (default 1000000); 1 KiB runs get N/3, 10 KiB N/15 (at least 10000)
  --handlers LIST    batch-ledger,batch-rows (default both)
  --workers LIST     worker processes on one group, at 6 partitions (default 1,2,3)
  --partitions LIST  partitions, with 1 worker (default 6,24,96)
  --sizes LIST       value bytes, with 1 worker and 6 partitions (default 150,1024,10240)
  --reader NAME      kafkajs or platformatic (default kafkajs)
  --batch N          batchMaxRecords (default 2000)
  --fetch-bytes N    fetchMaxBytesPerPartition (default: the runtime's, 256 KiB)
  --settle S         seconds the group may take to settle before the gate opens anyway (default 60)
  --stall S          seconds without a record applied before a cell fails (default 60)`;

type Handler = OncelyConfig['handler'];

interface Run {
  axis: 'base' | 'workers' | 'partitions' | 'size';
  handler: Handler;
  workers: number;
  partitions: number;
  valueBytes: number;
  records: number;
}

interface RunResult extends Run {
  ok: boolean;
  check: string;
  /** Seconds from the last worker's start() to the group's settling (undefined: not within --settle). */
  settledSec: number | undefined;
  /** Records/s from 10% to 90% of the records, and over the whole window (gate open to the last record). */
  recordsPerSec: number;
  wholeRecordsPerSec: number;
  mbPerSec: number;
  cpuUsPerRecord: number;
  /** Worker CPU seconds, summed over the workers. */
  cpuSec: number;
  /** The machine's busy cores over the window (all processes: Kafka, PostgreSQL, workers). */
  busyCores: number | undefined;
  peakRssMb: number;
  /** Seconds from the gate's opening to the last record applied. */
  seconds: number;
  load: number;
}

function list(v: string | undefined, fallback: number[]): number[] {
  if (v === undefined) return fallback;
  const out = v.split(',').map((x) => Number(x.trim().replaceAll('_', '')));
  if (out.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`not a list of positive integers: ${v}`);
  return out;
}

function plan(o: { records: number; handlers: Handler[]; workers: number[]; partitions: number[]; sizes: number[] }): Run[] {
  const runs: Run[] = [];
  const recordsFor = (valueBytes: number) =>
    valueBytes <= 150 ? o.records : Math.max(10_000, Math.round(o.records / (valueBytes >= 10_240 ? 15 : 3)));
  const axis = (a: Run['axis'], workers: number, partitions: number, valueBytes: number): Run['axis'] =>
    workers === 1 && partitions === 6 && valueBytes === 150 ? 'base' : a;
  for (const handler of o.handlers) {
    for (const workers of o.workers)
      runs.push({ axis: axis('workers', workers, 6, 150), handler, workers, partitions: 6, valueBytes: 150, records: o.records });
    for (const partitions of o.partitions)
      runs.push({
        axis: axis('partitions', 1, partitions, 150),
        handler,
        workers: 1,
        partitions,
        valueBytes: 150,
        records: o.records,
      });
    for (const valueBytes of o.sizes)
      runs.push({
        axis: axis('size', 1, 6, valueBytes),
        handler,
        workers: 1,
        partitions: 6,
        valueBytes,
        records: recordsFor(valueBytes),
      });
  }
  // The base (1 worker, 6 partitions, 150 B) is on every axis: run it once per handler.
  const seen = new Set<string>();
  return runs.filter((r) => {
    const key = `${r.handler}/${r.workers}/${r.partitions}/${r.valueBytes}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const topicOf = (r: Pick<Run, 'records' | 'partitions' | 'valueBytes'>) => benchTopic(r.records, r.partitions, r.valueBytes);

/** Rate from the first sample at or past a fraction `a` of the records to the first at or past `b`. */
function rateBetween(samples: Sample[], records: number, a: number, b: number): number {
  const s1 = samples.find((s) => s.applied >= records * a);
  const s2 = samples.find((s) => s.applied >= records * b);
  if (!s1 || !s2 || s2.at <= s1.at) return Number.NaN;
  return (s2.applied - s1.applied) / ((s2.at - s1.at) / 1000);
}

/** The machine's CPU time so far, busy and total, in clock ticks (undefined where there is no /proc). */
function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [, ...f] = line.trim().split(/\s+/);
    const v = f.map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = v[3]! + v[4]!;
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

const fmt = (n: number, d = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–';
const size = (b: number) => (b >= 1024 ? `${fmt(b / 1024, b % 1024 ? 1 : 0)} KiB` : `${b} B`);

interface Limits {
  settleSec: number;
  stallSec: number;
}

async function runOne(
  run: Run,
  services: { brokers: string[]; databaseUrl: string },
  batchMaxRecords: number,
  fetchMaxBytesPerPartition: number | undefined,
  reader: ReaderName,
  limits: Limits,
  log: (line: string) => void,
): Promise<RunResult> {
  const group = new BenchGroup({
    brokers: services.brokers,
    databaseUrl: services.databaseUrl,
    topic: topicOf(run),
    config: { handler: run.handler, reader, fenced: true },
    batchMaxRecords,
    fetchMaxBytesPerPartition,
    // Each worker's connections: one per partition it may run at once, a few at most (they share one server).
    poolMax: Math.min(run.partitions, 6) + 2,
    gated: true,
  });
  const failed = (check: string, extra: Partial<RunResult> = {}): RunResult => ({
    ...run,
    ok: false,
    check,
    settledSec: undefined,
    recordsPerSec: Number.NaN,
    wholeRecordsPerSec: Number.NaN,
    mbPerSec: Number.NaN,
    cpuUsPerRecord: Number.NaN,
    cpuSec: Number.NaN,
    busyCores: undefined,
    peakRssMb: Number.NaN,
    seconds: Number.NaN,
    load: loadavg()[0]!,
    ...extra,
  });
  await group.open();
  try {
    const t0 = Date.now();
    const workers: WorkerHandle[] = Array.from({ length: run.workers }, () => group.start());
    const exitedEarly = () => workers.find((w) => w.exited);
    let ready: number[];
    try {
      ready = await withTimeout(Promise.all(workers.map((w) => w.ready)), 60_000, 'a worker did not start within 60 s');
    } catch (e) {
      return failed(`start: ${e instanceof Error ? e.message : String(e)}`);
    }
    const readyAt = Math.max(...ready);
    const perWorker = Math.ceil(run.partitions / run.workers);
    const settled = (s: Sample) => s.held === run.partitions && s.owners === run.workers && s.most <= perWorker;
    const before = await group.follow({
      records: Number.POSITIVE_INFINITY,
      until: readyAt + limits.settleSec * 1000,
      onSample: (s) => settled(s) || exitedEarly() !== undefined,
    });
    if (exitedEarly()) return failed(`a worker exited while the group settled (${exitedEarly()!.child.exitCode ?? 'signal'})`);
    const last = before[before.length - 1]!;
    const settledSec = settled(last) ? (last.at - readyAt) / 1000 : undefined;
    log(
      `  ${run.workers} worker(s) ready in ${((readyAt - t0) / 1000).toFixed(1)} s; ${
        settledSec === undefined
          ? `the group did not settle within ${limits.settleSec} s (held ${last.held}/${run.partitions} by ${last.owners}, most ${last.most}): opening the gate anyway`
          : `group settled in ${settledSec.toFixed(1)} s (${run.partitions} partitions, at most ${perWorker} per worker)`
      }`,
    );
    const cpu0 = machineCpu();
    for (const w of workers) w.go();
    const goAt = Date.now();
    let lastLog = goAt;
    let lastProgress = { at: goAt, applied: 0 };
    let stalled = false;
    const samples = await group.follow({
      records: run.records,
      until: Number.POSITIVE_INFINITY,
      onSample: (s) => {
        if (s.applied > lastProgress.applied) lastProgress = { at: s.at, applied: s.applied };
        else if (s.at - lastProgress.at > limits.stallSec * 1000) stalled = true;
        if (s.at - lastLog >= 5_000) {
          lastLog = s.at;
          log(
            `  ${fmt((s.at - goAt) / 1000, 0).padStart(4)} s: ${fmt(s.applied)} / ${fmt(run.records)} (${fmt((100 * s.applied) / run.records)}%)`,
          );
        }
        return stalled || exitedEarly() !== undefined;
      },
    });
    const cpu1 = machineCpu();
    const end = samples[samples.length - 1]!;
    if (exitedEarly() || stalled) {
      const why = exitedEarly()
        ? `a worker exited at ${end.applied} of ${run.records} records`
        : `no record applied for ${limits.stallSec} s, at ${end.applied} of ${run.records}`;
      return failed(why);
    }
    let finals: Array<{ cpuSec: number; peakRssMb: number; committed: number }>;
    try {
      finals = await withTimeout(Promise.all(workers.map((w) => w.stop())), 60_000, 'a worker did not stop within 60 s');
    } catch (e) {
      return failed(`stop: ${e instanceof Error ? e.message : String(e)}`);
    }
    const committed = finals.reduce((n, f) => n + f.committed, 0);
    const table = await group.check({ records: run.records, totalCents: totalCents(run.records).toString() });
    const after = await group.sample();
    const ok = table.ok && after.applied === run.records && committed === run.records;
    const check = `${table.check}; positions ${fmt(after.applied)}; workers committed ${fmt(committed)}`;
    const recordsPerSec = rateBetween(samples, run.records, 0.1, 0.9);
    const recordBytes = KEY_BYTES + valueBytesOf(0, run.valueBytes);
    const cpuSec = finals.reduce((n, f) => n + f.cpuSec, 0);
    return {
      ...run,
      ok,
      check,
      settledSec,
      recordsPerSec,
      wholeRecordsPerSec: end.applied / ((end.at - goAt) / 1000),
      mbPerSec: (recordsPerSec * recordBytes) / 1_048_576,
      cpuUsPerRecord: (cpuSec * 1e6) / run.records,
      cpuSec,
      busyCores:
        cpu0 && cpu1 && cpu1.total > cpu0.total
          ? ((cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total)) * cpus().length
          : undefined,
      peakRssMb: Math.max(...finals.map((f) => f.peakRssMb)),
      seconds: (end.at - goAt) / 1000,
      load: loadavg()[0]!,
    };
  } finally {
    await group.close();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(why)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const HANDLER_TITLE: Record<Handler, string> = {
  'batch-ledger': 'batch ledger',
  'batch-rows': 'batch rows',
  message: 'per-message',
};

/** The table for docs/performance.md: one row per setting, the handlers side by side. */
function docsTable(results: RunResult[]): string {
  const handlers = [...new Set(results.map((r) => r.handler))];
  const settings: Array<Pick<Run, 'axis' | 'workers' | 'partitions' | 'valueBytes'>> = [];
  for (const r of results)
    if (!settings.some((s) => s.workers === r.workers && s.partitions === r.partitions && s.valueBytes === r.valueBytes))
      settings.push(r);
  const order: Run['axis'][] = ['base', 'workers', 'partitions', 'size'];
  settings.sort((a, b) => order.indexOf(a.axis) - order.indexOf(b.axis));
  const header = [
    'what varies',
    'worker processes',
    'partitions',
    'value',
    ...handlers.flatMap((h) => [`${HANDLER_TITLE[h]} records/s`, 'MB/s', 'CPU µs/record']),
    'busy cores',
  ];
  const lines = [
    `| ${header.join(' | ')} |`,
    `| --- | ${header
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
  ];
  for (const s of settings) {
    const cells = handlers.map((h) =>
      results.find(
        (r) => r.handler === h && r.workers === s.workers && r.partitions === s.partitions && r.valueBytes === s.valueBytes,
      ),
    );
    const busy = cells.filter((r) => r?.busyCores !== undefined).map((r) => r!.busyCores!);
    lines.push(
      `| ${s.axis === 'base' ? 'base' : s.axis} | ${s.workers} | ${s.partitions} | ${size(s.valueBytes)} | ${cells
        .flatMap((r) =>
          !r
            ? ['–', '–', '–']
            : r.ok
              ? [fmt(r.recordsPerSec), fmt(r.mbPerSec, 1), fmt(r.cpuUsPerRecord, 1)]
              : ['FAILED', '–', '–'],
        )
        .join(' | ')} | ${busy.length ? busy.map((b) => fmt(b, 1)).join(' / ') : '–'} |`,
    );
  }
  return lines.join('\n');
}

function markdown(
  results: RunResult[],
  environment: string,
  batchMaxRecords: number,
  fetchBytes: number | undefined,
  minutes: { total: number; topics: number },
): string {
  const lines = [
    '# oncely scaling',
    '',
    environment,
    '',
    `batchMaxRecords ${batchMaxRecords}, fetchMaxBytesPerPartition ${fetchBytes ?? 'default'}; one run per cell; ${fmt(minutes.total, 1)} min in all, of which ${fmt(minutes.topics, 1)} min preparing topics.`,
    '',
    "Each cell: worker processes on one group, gated until the group settled (every partition held, by all of them, none holding more than ⌈P/N⌉), then all applying at once. records/s from 10% to 90% of the records applied; MB/s of keys and values at that rate; CPU µs/record = the worker processes' CPU from the gate's opening to the stop request, summed, ÷ records (Kafka's and PostgreSQL's CPU not included); busy cores = the whole machine's CPU over the window, in cores (Kafka, PostgreSQL, the workers and anything else), one figure per handler.",
    '',
    docsTable(results),
    '',
    '## Every cell',
    '',
    'settled s: from the last worker ready to the group settled. whole records/s: gate open to the last record. load: the 1-minute load average at the end of the cell (2 cores: above ~2 means more than the cell competed).',
    '',
    '| handler | workers | partitions | value | records | records/s | whole records/s | MB/s | CPU µs/record | worker CPU s | busy cores | peak RSS MB (max worker) | settled s | s | load | check |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of results)
    lines.push(
      `| ${r.handler} | ${r.workers} | ${r.partitions} | ${size(r.valueBytes)} | ${fmt(r.records)} | ${fmt(r.recordsPerSec)} | ${fmt(r.wholeRecordsPerSec)} | ${fmt(r.mbPerSec, 1)} | ${fmt(r.cpuUsPerRecord, 1)} | ${fmt(r.cpuSec, 1)} | ${r.busyCores === undefined ? '–' : fmt(r.busyCores, 1)} | ${fmt(r.peakRssMb)} | ${r.settledSec === undefined ? '–' : fmt(r.settledSec, 1)} | ${fmt(r.seconds, 1)} | ${fmt(r.load, 1)} | ${r.ok ? `ok: ${r.check}` : `FAILED: ${r.check}`} |`,
    );
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '1000000' },
      handlers: { type: 'string', default: 'batch-ledger,batch-rows' },
      workers: { type: 'string' },
      partitions: { type: 'string' },
      sizes: { type: 'string' },
      batch: { type: 'string', default: '2000' },
      'fetch-bytes': { type: 'string' },
      reader: { type: 'string', default: 'kafkajs' },
      settle: { type: 'string', default: '60' },
      stall: { type: 'string', default: '60' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  let runs: Run[];
  let batchMaxRecords: number;
  let fetchBytes: number | undefined;
  let limits: Limits;
  const reader = values.reader as ReaderName;
  try {
    if (!READERS.includes(reader)) throw new Error(`--reader must be one of ${READERS.join(', ')}; got ${values.reader}`);
    const handlers = values.handlers.split(',').map((h) => h.trim());
    for (const h of handlers)
      if (h !== 'batch-ledger' && h !== 'batch-rows' && h !== 'message') throw new Error(`unknown handler ${h}`);
    const [records] = list(values.records, []);
    [batchMaxRecords] = list(values.batch, []) as [number];
    fetchBytes = values['fetch-bytes'] === undefined ? undefined : list(values['fetch-bytes'], [])[0];
    limits = { settleSec: list(values.settle, [])[0]!, stallSec: list(values.stall, [])[0]! };
    runs = plan({
      records: records!,
      handlers: handlers as Handler[],
      workers: list(values.workers, [1, 2, 3]),
      partitions: list(values.partitions, [6, 24, 96]),
      sizes: list(values.sizes, [150, 1024, 10240]),
    });
  } catch (e) {
    console.error(`bench:scale: ${e instanceof Error ? e.message : String(e)}\n\n${usage}`);
    return 2;
  }
  if (!build()) return 1;
  const { services, brokers, databaseUrl } = await startServices();
  const t0 = performance.now();
  const log = (line: string) => console.log(line);

  // Every topic first, so that producing one never runs beside a measurement.
  const topics = new Map<string, Run>();
  for (const r of runs) if (!topics.has(topicOf(r))) topics.set(topicOf(r), r);
  log(`bench:scale: ${runs.length} cells over ${topics.size} topics`);
  await prepareTopics(
    brokers,
    [...topics].map(([topic, r]) => ({ topic, partitions: r.partitions, records: r.records, valueBytes: r.valueBytes })),
    log,
  );
  const topicsMin = (performance.now() - t0) / 60_000;

  const results: RunResult[] = [];
  const checkpoints = new Checkpoints(databaseUrl);
  const cellsStarted = performance.now();
  for (const [i, run] of runs.entries()) {
    // What the cell before left dirty is written out before this one's window, as in pnpm bench.
    await checkpoints.before();
    log(
      `[${i + 1}/${runs.length}] ${HANDLER_TITLE[run.handler]}, ${run.workers} worker process(es), ${run.partitions} partitions, ${size(run.valueBytes)} values, ${fmt(run.records)} records`,
    );
    const r = await runOne(run, { brokers, databaseUrl }, batchMaxRecords, fetchBytes, reader, limits, log);
    results.push(r);
    const elapsed = (performance.now() - cellsStarted) / 1000;
    const left = (elapsed / (i + 1)) * (runs.length - i - 1);
    log(
      `  ${
        r.ok
          ? `${Number.isFinite(r.recordsPerSec) ? fmt(r.recordsPerSec) : '– (too short a window between 10% and 90%: raise --records)'} records/s, ${fmt(r.cpuUsPerRecord, 1)} CPU µs/record, ${fmt(r.seconds, 1)} s, busy cores ${r.busyCores === undefined ? '–' : fmt(r.busyCores, 1)}, load ${fmt(r.load, 1)}; ok: ${r.check}`
          : `FAILED: ${r.check}`
      }${runs.length > i + 1 ? ` · ${fmt((performance.now() - t0) / 60_000, 1)} min so far, about ${fmt(left / 60, 1)} min to go` : ''}`,
    );
  }
  const totalMin = (performance.now() - t0) / 60_000;
  const environment = `${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · ${Math.round(totalmem() / 2 ** 30)} GiB · Kafka ${brokers.join(',')} (${services.kafka.source}) · PostgreSQL (${services.postgres.source}) · reader ${reader}`;
  const md = markdown(results, environment, batchMaxRecords, fetchBytes, { total: totalMin, topics: topicsMin });
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  const name = `scale-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  writeFileSync(
    join(dir, `${name}.json`),
    `${JSON.stringify({ environment, batchMaxRecords, fetchBytes, minutes: { total: totalMin, topics: topicsMin }, results }, null, 2)}\n`,
  );
  writeFileSync(join(dir, `${name}.md`), md);
  log(`\n${md}\nresults: bench/results/${name}.{json,md}`);
  const bad = results.filter((r) => !r.ok);
  if (bad.length) console.error(`bench:scale: ${bad.length} of ${results.length} cells failed`);
  return bad.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
