/**
 * `pnpm bench`: oncely against the alternatives and the ceilings, in one run, on one machine.
 *
 * Builds the packages and the bench (scenarios run from dist/ under plain node), prepares a topic
 * (reused when it already holds the same records), then runs each scenario in its own child
 * process, one after another, from a cold start on a fresh table:
 *   1 raw kafkajs (read ceiling) · 2 COPY of pre-built buffers (write ceiling) · 3 psql's \copy of
 *   the same rows · 4 naive at-least-once · 5 oncely per-message · 6 oncely batch rows ·
 *   7 oncely batch ledger · 8 oncely batch rows, fence off · 9 raw @platformatic/kafka (its read
 *   ceiling, beside 1) · 10 oncely batch ledger with the platformatic reader (beside 7)
 * and reports records/s, MB/s, CPU µs per record, wall time, commit latency, peak RSS, the targets
 * (PASS/MISS), and, on request, per-stage timings and CPU profiles. Results: bench/results/*.json and *.md.
 *
 * Exit status: 0 when every scenario completed and its check held; 1 otherwise; 2 for bad arguments.
 * See bench/README.md for the options.
 */
import { fork } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiled } from './build.js';
import {
  type BenchArgs,
  type CopyFormat,
  ONCELY_SCENARIOS,
  runOrder,
  SCENARIOS,
  type ScenarioInput,
  type ScenarioName,
  type ScenarioResult,
  TITLES,
} from './config.js';
import { KEY_BYTES, totalCents, valueBytesOf } from './data.js';
import { describeMemory } from './measure.js';
import { type ProfileSummary, summarizeProfile } from './profile.js';
import { benchTopic, build, Checkpoints, prepareTopics, startServices } from './prologue.js';
import { evaluateTargets, markdown, summarize } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, 'results');

const usage = `usage: pnpm bench [options]
  --records N          records in the topic (default 1000000; --quick: 50000)
  --partitions N       partitions of the topic (default 6)
  --value-bytes N      bytes of each JSON value (default 150; keys add 9)
  --batch N            oncely batchMaxRecords (default 2000, the runtime's default)
  --fetch-bytes N      oncely fetchMaxBytesPerPartition (default: the runtime's)
  --naive-records N    records the naive scenario handles (default 100000; --quick: 5000)
  --copy-format F      text or binary: the COPY ceiling's pre-built buffers (default binary)
  --rows-codec C       lazy or eager: the rows scenarios' json codec (default lazy: the values go to
                       jsonb as fetched, and PostgreSQL checks them; eager parses each before the handler)
  --scenarios LIST     comma-separated numbers or names (default all):
${SCENARIOS.map((s, i) => `                         ${i + 1} ${s}`).join('\n')}
  --runs N             repeat every scenario N times (interleaved; 6 and 8 back to back, alternating) and report medians (default 1)
  --quick              smoke test: small data; exit non-zero unless every scenario completes with correct counts
  --stages             per-stage timings (fetch, decode, handler, commit) in the oncely scenarios
  --profile            CPU profile (node --cpu-prof) of the oncely scenarios, summarized in the report
  --topic NAME         topic to use (default: oncely-bench-<records>r-<partitions>p-<value-bytes>b)
  --node-flags FLAGS   node/V8 flags for the oncely scenarios' workers, after those oncely run adds
                       (e.g. --node-flags "--heap-growing-percent=50"; NODE_OPTIONS refuses most V8 flags)`;

class UsageError extends Error {}

function parseArgs(argv: string[]): BenchArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') continue;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument ${a}`);
    const [name, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (['quick', 'stages', 'profile', 'help'].includes(name)) {
      flags.add(name);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    values.set(name, value);
  }
  if (flags.has('help')) {
    console.log(usage);
    process.exit(0);
  }
  const known = [
    'records',
    'partitions',
    'value-bytes',
    'record-size',
    'batch',
    'fetch-bytes',
    'naive-records',
    'copy-format',
    'rows-codec',
    'scenarios',
    'runs',
    'topic',
    'node-flags',
  ];
  for (const k of values.keys()) if (!known.includes(k)) throw new UsageError(`unknown option --${k}`);
  const int = (name: string, fallback: number | undefined, min = 1): number | undefined => {
    const v = values.get(name);
    if (v === undefined) return fallback;
    const n = Number(v.replaceAll('_', ''));
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}; got ${v}`);
    return n;
  };
  const quick = flags.has('quick');
  const records = int('records', quick ? 50_000 : 1_000_000)!;
  let scenarios: ScenarioName[] = [...SCENARIOS];
  const list = values.get('scenarios');
  if (list) {
    scenarios = list.split(',').map((s) => {
      const t = s.trim();
      const byNumber = /^\d+$/.test(t) ? SCENARIOS[Number(t) - 1] : undefined;
      const found = byNumber ?? SCENARIOS.find((x) => x === t);
      if (!found)
        throw new UsageError(`--scenarios: unknown scenario ${t}; use 1-${SCENARIOS.length} or ${SCENARIOS.join(', ')}`);
      return found;
    });
    scenarios = SCENARIOS.filter((s) => scenarios.includes(s));
  }
  const copyFormat = values.get('copy-format') ?? 'binary';
  if (copyFormat !== 'text' && copyFormat !== 'binary')
    throw new UsageError(`--copy-format must be text or binary; got ${copyFormat}`);
  const rowsCodec = values.get('rows-codec') ?? 'lazy';
  if (rowsCodec !== 'lazy' && rowsCodec !== 'eager') throw new UsageError(`--rows-codec must be lazy or eager; got ${rowsCodec}`);
  return {
    records,
    partitions: int('partitions', 6)!,
    valueBytes: int('value-bytes', int('record-size', 150, 40), 40)!,
    batchMaxRecords: int('batch', 2000)!,
    fetchMaxBytesPerPartition: int('fetch-bytes', undefined, 1024),
    naiveRecords: int('naive-records', quick ? 5_000 : 100_000)!,
    copyFormat: copyFormat as CopyFormat,
    rowsCodec,
    scenarios,
    runs: int('runs', 1)!,
    quick,
    stages: flags.has('stages'),
    profile: flags.has('profile'),
    topic: values.get('topic'),
    nodeFlags: (values.get('node-flags') ?? '').split(/\s+/).filter(Boolean),
  };
}

const ONCELY = (s: ScenarioName) => ONCELY_SCENARIOS[s] !== undefined;

function runChild(
  input: ScenarioInput,
  opts: { profileDir?: string; timeoutMs: number; nodeFlags: readonly string[] },
): Promise<{ result: ScenarioResult | undefined; error?: string }> {
  // Plain node on the compiled entry point (not this process's TypeScript loader): the packages' dist/.
  const execArgv = ['--expose-gc', ...opts.nodeFlags];
  if (opts.profileDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`);
  const child = fork(compiled('scenario.ts'), [], {
    env: { ...process.env, BENCH_INPUT: JSON.stringify(input) },
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve) => {
    let result: ScenarioResult | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('message', (m) => {
      result = m as ScenarioResult;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (result && code === 0) resolve({ result });
      else
        resolve({
          result,
          error: signal === 'SIGKILL' ? `timed out after ${opts.timeoutMs / 1000} s` : `exited with ${code ?? signal}`,
        });
    });
  });
}

function failed(input: ScenarioInput, why: string): ScenarioResult {
  return {
    scenario: input.scenario,
    run: input.run,
    ok: false,
    check: why,
    records: 0,
    bytes: 0,
    wallMs: 0,
    activeMs: 0,
    recordsPerSec: 0,
    mbPerSec: 0,
    peakRssMb: 0,
    cpuSec: 0,
    cpuUsPerRecord: Number.NaN,
    elu: 0,
    loadStart: 0,
    loadEnd: 0,
  };
}

async function main(): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`bench: ${e.message}\n\n${usage}`);
      return 2;
    }
    throw e;
  }
  const log = (line: string) => console.log(line);
  if (!build(log)) return 1;
  // The oncely scenarios run with the node flags `oncely run` starts a worker with (built just now).
  const { workerNodeFlags } = await import('@oncely/cli');
  const workerFlags = [...workerNodeFlags([]), ...args.nodeFlags];
  if (workerFlags.length > 0)
    log(
      `oncely scenarios run with ${workerFlags.join(' ')}${args.nodeFlags.length ? ' (--node-flags added)' : ', as `oncely run` does on this machine'}`,
    );
  const { services, brokers, databaseUrl } = await startServices();
  const topic = args.topic ?? benchTopic(args.records, args.partitions, args.valueBytes);
  const produce = (
    await prepareTopics(
      brokers,
      [{ topic, partitions: args.partitions, records: args.records, valueBytes: args.valueBytes }],
      log,
    )
  )[0]!;
  const valueBytes = valueBytesOf(0, args.valueBytes);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  mkdirSync(resultsDir, { recursive: true });
  const profileRoot = join(resultsDir, `profiles-${stamp}`);

  const results: ScenarioResult[] = [];
  const profiles: Array<{ scenario: ScenarioName; run: number; summary: ProfileSummary }> = [];
  const base = {
    brokers,
    databaseUrl,
    topic,
    partitions: args.partitions,
    records: args.records,
    recordBytes: KEY_BYTES + valueBytes,
    valueBytes: args.valueBytes,
    totalCents: totalCents(args.records).toString(),
    batchMaxRecords: args.batchMaxRecords,
    fetchMaxBytesPerPartition: args.fetchMaxBytesPerPartition,
    naiveRecords: args.naiveRecords,
    copyFormat: args.copyFormat,
    rowsCodec: args.rowsCodec,
  };
  // Generous: the slowest scenario (per-message) runs at a few thousand records/s on a loaded machine.
  const timeoutMs = Math.max(120_000, (args.records / 1_000) * 1_000);
  const checkpoints = new Checkpoints(databaseUrl);
  for (let run = 1; run <= args.runs; run++) {
    for (const scenario of runOrder(args.scenarios, run)) {
      const input: ScenarioInput = { ...base, scenario, run, stages: args.stages && ONCELY(scenario) };
      const profileDir = args.profile && ONCELY(scenario) ? join(profileRoot, `${scenario}-run${run}`) : undefined;
      await checkpoints.before();
      process.stdout.write(`run ${run}/${args.runs} ${TITLES[scenario]} … `);
      const { result, error } = await runChild(input, {
        timeoutMs,
        nodeFlags: ONCELY(scenario) ? workerFlags : [],
        ...(profileDir ? { profileDir } : {}),
      });
      const r = error ? failed(input, `${error}${result ? ` (after reporting: ${result.check})` : ''}`) : result!;
      results.push(r);
      console.log(
        r.skipped
          ? `skipped: ${r.check}`
          : r.ok
            ? `${Math.round(r.recordsPerSec).toLocaleString('en-US')} records/s, ${Number.isFinite(r.cpuUsPerRecord) ? r.cpuUsPerRecord.toFixed(1) : '–'} CPU µs/record, ${(r.activeMs / 1000).toFixed(2)} s, RSS ${Math.round(r.peakRssMb)} MB, load ${r.loadStart.toFixed(1)}→${r.loadEnd.toFixed(1)} — ${r.check}`
            : `FAILED: ${r.check}`,
      );
      if (r.ok && !r.skipped && r.memoryAtPeak) console.log(`  memory ${describeMemory(r.memoryAtPeak)}`);
      if (profileDir) {
        for (const f of readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile'))) {
          const summary = summarizeProfile(join(profileDir, f));
          // A thread that idles through the run (a loader's, a worker's) writes a profile too.
          const idle = summary.areas.find((a) => a.area === '(idle)')?.share ?? 0;
          if (idle < 0.95) profiles.push({ scenario, run, summary });
        }
      }
    }
  }

  const summaries = summarize(results, args.runs);
  const targets = evaluateTargets(results, args.runs);
  const environment = `${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · ${Math.round(totalmem() / 2 ** 30)} GiB · Kafka ${brokers.join(',')} (${services.kafka.source}) · PostgreSQL (${services.postgres.source})`;
  const md = markdown({ args, topic, produce, summaries, targets, profiles, environment, workerFlags });
  const json = JSON.stringify(
    { args, topic, produce, environment, workerFlags, results, summaries, targets, profiles },
    (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
    2,
  );
  const name = `bench-${args.quick ? 'quick-' : ''}${stamp}`;
  writeFileSync(join(resultsDir, `${name}.json`), `${json}\n`);
  writeFileSync(join(resultsDir, `${name}.md`), md);
  copyFileSync(join(resultsDir, `${name}.json`), join(resultsDir, 'latest.json'));
  copyFileSync(join(resultsDir, `${name}.md`), join(resultsDir, 'latest.md'));
  console.log(`\n${md}`);
  console.log(`results: bench/results/${name}.{json,md}`);
  const bad = results.filter((r) => !r.ok);
  if (bad.length > 0) {
    console.error(`bench: ${bad.length} scenario run(s) failed: ${bad.map((r) => `${r.scenario} (run ${r.run})`).join(', ')}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
