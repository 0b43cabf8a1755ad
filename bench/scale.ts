/**
 * `pnpm bench:scale`: how oncely scales out and how its cost grows with the records, in one run.
 * One factor at a time around a base of 1 worker process, 6 partitions, 150-byte values:
 *
 * - workers:    1, 2, 3 worker processes on one group (elastic membership, the runtime's default:
 *               the live workers share the partitions), 6 partitions;
 * - partitions: 6, 24, 96 partitions, 1 worker;
 * - sizes:      values of 150 B, 1 KiB, 10 KiB (keys add 9), 1 worker, 6 partitions;
 *
 * each with the ledger and the row-per-record handlers (scenarios 7 and 6 of `pnpm bench`). Every
 * run starts from a cold start (fresh group, offsets schema and table), its workers are processes
 * of bench/worker.ts (compiled, plain node, the packages' dist/), and it is checked for
 * exactly-once at the end. Figures, from the group's committed positions polled every 100 ms:
 * records/s from the later of 10% of the records applied and the group's convergence (every
 * worker holds partitions, none more than ⌈P/N⌉: a joining worker waits for a hand-off, up to a
 * heartbeat, 3 s) to 90% (the uneven tail is left out; the whole window's rate is in the JSON),
 * MB/s of keys and values, and CPU µs per record summed over the workers (each worker's user +
 * system CPU from its start() to its stop, ÷ records).
 *
 * Records: --records (1,000,000, as `pnpm bench`, whose topic it reuses) of 150 B; the larger values get fewer records so that a run moves
 * a similar volume (1 KiB: a third, 10 KiB: a fifteenth), at least 10,000. Results:
 * bench/results/scale-*.json|md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { up } from '../scripts/services/index.js';
import { BuildError, buildForBench } from './build.js';
import { type OncelyConfig, READERS, type ReaderName } from './config.js';
import { KEY_BYTES, totalCents, valueBytesOf } from './data.js';
import { BenchGroup, type Sample } from './group.js';
import { prepareTopic } from './produce.js';

const here = dirname(fileURLToPath(import.meta.url));

const usage = `usage: pnpm bench:scale [options]
  --records N        records of 150-byte values per run (default 1000000); 1 KiB runs get N/3, 10 KiB N/15
  --handlers LIST    batch-ledger,batch-rows (default both)
  --workers LIST     worker processes on one group, at 6 partitions (default 1,2,3)
  --partitions LIST  partitions, with 1 worker (default 6,24,96)
  --sizes LIST       value bytes, with 1 worker and 6 partitions (default 150,1024,10240)
  --reader NAME      kafkajs or platformatic (default kafkajs)
  --batch N          batchMaxRecords (default 2000)
  --fetch-bytes N    fetchMaxBytesPerPartition (default: the runtime's, 256 KiB)`;

interface Run {
  axis: 'workers' | 'partitions' | 'size';
  handler: OncelyConfig['handler'];
  workers: number;
  partitions: number;
  valueBytes: number;
  records: number;
}

interface RunResult extends Run {
  ok: boolean;
  /** Seconds from the last worker's start() to the group's convergence (undefined: never seen). */
  convergedSec: number | undefined;
  check: string;
  recordsPerSec: number;
  wholeRecordsPerSec: number;
  mbPerSec: number;
  cpuUsPerRecord: number;
  peakRssMb: number;
  seconds: number;
  load: number;
}

function list(v: string | undefined, fallback: number[]): number[] {
  if (v === undefined) return fallback;
  const out = v.split(',').map((x) => Number(x.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`not a list of positive integers: ${v}`);
  return out;
}

function plan(o: {
  records: number;
  handlers: OncelyConfig['handler'][];
  workers: number[];
  partitions: number[];
  sizes: number[];
}): Run[] {
  const runs: Run[] = [];
  const recordsFor = (valueBytes: number) =>
    valueBytes <= 150 ? o.records : Math.max(10_000, Math.round(o.records / (valueBytes >= 10_240 ? 15 : 3)));
  for (const handler of o.handlers) {
    for (const workers of o.workers)
      runs.push({ axis: 'workers', handler, workers, partitions: 6, valueBytes: 150, records: o.records });
    for (const partitions of o.partitions)
      runs.push({ axis: 'partitions', handler, workers: 1, partitions, valueBytes: 150, records: o.records });
    for (const valueBytes of o.sizes)
      runs.push({ axis: 'size', handler, workers: 1, partitions: 6, valueBytes, records: recordsFor(valueBytes) });
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

/** Rate from the first sample at or past `from` (and a fraction a of the records) to the first at or past b of them. */
function rateBetween(samples: Sample[], records: number, a: number, b: number, from: number): number {
  const s1 = samples.find((s) => s.applied >= records * a && s.at >= from);
  const s2 = samples.find((s) => s.applied >= records * b);
  if (!s1 || !s2 || s2.at <= s1.at) return Number.NaN;
  return (s2.applied - s1.applied) / ((s2.at - s1.at) / 1000);
}

async function runOne(
  run: Run,
  services: { brokers: string[]; databaseUrl: string },
  batchMaxRecords: number,
  fetchMaxBytesPerPartition: number | undefined,
  reader: ReaderName,
): Promise<RunResult> {
  const topic = `oncely-bench-${run.records}r-${run.partitions}p-${run.valueBytes}b`;
  await prepareTopic({
    brokers: services.brokers,
    topic,
    partitions: run.partitions,
    records: run.records,
    valueBytes: run.valueBytes,
    log: console.log,
  });
  const group = new BenchGroup({
    brokers: services.brokers,
    databaseUrl: services.databaseUrl,
    topic,
    config: { handler: run.handler, reader, fenced: true },
    batchMaxRecords,
    fetchMaxBytesPerPartition,
    // Each worker's connections: one per partition it may run at once, a few at most (they share one server).
    poolMax: Math.min(run.partitions, 6) + 2,
  });
  await group.open();
  try {
    const workers = Array.from({ length: run.workers }, () => group.start());
    const ready = await Promise.all(workers.map((w) => w.ready));
    const startedAt = Math.max(...ready);
    const samples = await group.follow({ records: run.records, until: Date.now() + 30 * 60_000 });
    const last = samples[samples.length - 1]!;
    const finals = await Promise.all(workers.map((w) => w.stop()));
    const check = await group.check({ records: run.records, totalCents: totalCents(run.records).toString() });
    const done = last.applied >= run.records;
    const atStart = [...samples].reverse().find((s) => s.at <= startedAt) ?? { at: startedAt, applied: 0 };
    const whole = (last.applied - atStart.applied) / ((last.at - startedAt) / 1000);
    const perWorker = Math.ceil(run.partitions / run.workers);
    const converged = samples.find((s) => s.at >= startedAt && s.owners === run.workers && s.most <= perWorker);
    const recordsPerSec = rateBetween(samples, run.records, 0.1, 0.9, converged?.at ?? startedAt);
    const recordBytes = KEY_BYTES + valueBytesOf(0, run.valueBytes);
    return {
      ...run,
      ok: done && check.ok,
      convergedSec: converged ? (converged.at - startedAt) / 1000 : undefined,
      check: done ? check.check : `timed out at ${last.applied} of ${run.records}; ${check.check}`,
      recordsPerSec,
      wholeRecordsPerSec: whole,
      mbPerSec: (recordsPerSec * recordBytes) / 1_048_576,
      cpuUsPerRecord: (finals.reduce((n, f) => n + f.cpuSec, 0) * 1e6) / run.records,
      peakRssMb: Math.max(...finals.map((f) => f.peakRssMb)),
      seconds: (last.at - startedAt) / 1000,
      load: loadavg()[0]!,
    };
  } finally {
    await group.close();
  }
}

function markdown(results: RunResult[], environment: string, batchMaxRecords: number, fetchBytes: number | undefined): string {
  const num = (v: number, d = 0) =>
    Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–';
  const size = (b: number) => (b >= 1024 ? `${num(b / 1024, b % 1024 ? 1 : 0)} KiB` : `${b} B`);
  const lines = [
    '# oncely scaling',
    '',
    environment,
    '',
    `batchMaxRecords ${batchMaxRecords}, fetchMaxBytesPerPartition ${fetchBytes ?? 'default'}; one run each; records/s from the later of 10% of the records applied and the group's convergence (converged: seconds after the last worker started; – when 90% came first) to 90%; CPU µs/record summed over the worker processes; load = the 1-minute load average at the end of the run (2 cores: above ~2 means other work competed).`,
    '',
    '| handler | workers | partitions | value | records | records/s | MB/s | CPU µs/record | peak RSS MB (max worker) | converged s | s | load | check |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of results)
    lines.push(
      `| ${r.handler} | ${r.workers} | ${r.partitions} | ${size(r.valueBytes)} | ${num(r.records)} | ${num(r.recordsPerSec)} | ${num(r.mbPerSec, 1)} | ${num(r.cpuUsPerRecord, 1)} | ${num(r.peakRssMb)} | ${r.convergedSec === undefined ? '–' : num(r.convergedSec, 1)} | ${num(r.seconds, 1)} | ${num(r.load, 1)} | ${r.ok ? 'ok' : `FAILED: ${r.check}`} |`,
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
  const reader = values.reader as ReaderName;
  try {
    if (!READERS.includes(reader)) throw new Error(`--reader must be one of ${READERS.join(', ')}; got ${values.reader}`);
    const handlers = values.handlers.split(',').map((h) => h.trim());
    for (const h of handlers)
      if (h !== 'batch-ledger' && h !== 'batch-rows' && h !== 'message') throw new Error(`unknown handler ${h}`);
    const [records] = list(values.records.replaceAll('_', ''), []);
    [batchMaxRecords] = list(values.batch, []) as [number];
    fetchBytes = values['fetch-bytes'] === undefined ? undefined : list(values['fetch-bytes'], [])[0];
    runs = plan({
      records: records!,
      handlers: handlers as OncelyConfig['handler'][],
      workers: list(values.workers, [1, 2, 3]),
      partitions: list(values.partitions, [6, 24, 96]),
      sizes: list(values.sizes, [150, 1024, 10240]),
    });
  } catch (e) {
    console.error(`bench:scale: ${e instanceof Error ? e.message : String(e)}\n\n${usage}`);
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
  const t0 = performance.now();
  const results: RunResult[] = [];
  for (const run of runs) {
    process.stdout.write(
      `${run.handler}, ${run.workers} worker(s), ${run.partitions} partitions, ${run.valueBytes}-byte values, ${run.records.toLocaleString('en-US')} records … `,
    );
    const r = await runOne(
      run,
      { brokers: services.kafka.brokers, databaseUrl: services.postgres.url },
      batchMaxRecords,
      fetchBytes,
      reader,
    );
    results.push(r);
    console.log(
      r.ok
        ? `${Number.isFinite(r.recordsPerSec) ? Math.round(r.recordsPerSec).toLocaleString('en-US') : '– (too few records after the group settled: raise --records)'} records/s, ${r.cpuUsPerRecord.toFixed(1)} CPU µs/record, ${r.seconds.toFixed(1)} s, load ${r.load.toFixed(1)}`
        : `FAILED: ${r.check}`,
    );
  }
  const environment = `${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · ${Math.round(totalmem() / 2 ** 30)} GiB · Kafka ${services.kafka.brokers.join(',')} (${services.kafka.source}) · PostgreSQL (${services.postgres.source}) · ${((performance.now() - t0) / 60_000).toFixed(1)} min`;
  const md = markdown(results, `${environment} · reader ${reader}`, batchMaxRecords, fetchBytes);
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  const name = `scale-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ environment, batchMaxRecords, fetchBytes, results }, null, 2)}\n`);
  writeFileSync(join(dir, `${name}.md`), md);
  console.log(`\n${md}\nresults: bench/results/${name}.{json,md}`);
  return results.every((r) => r.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
