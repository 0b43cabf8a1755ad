/**
 * One scenario in its own process, so that its peak RSS and CPU are its own: main.ts builds the
 * bench (bench/tsconfig.build.json) and forks the compiled file with plain node (the packages
 * from their dist/, no TypeScript loader) with the scenario's input in BENCH_INPUT, and receives
 * one ScenarioResult over IPC.
 *
 * A scenario's module is imported only when that scenario runs: the process's peak RSS and start
 * are then those of what the scenario itself loads (an oncely worker with the kafkajs reader does not
 * load @platformatic/kafka, which the platformatic scenario's module imports, nor pg-copy-streams).
 */
import { loadavg } from 'node:os';

// kafkajs 2.2.4 arms a timer with a negative delay (packages/core/src/kafkajs/internals.ts), and Node
// warns on every connection. @oncely/core quiets it when it loads; the raw kafkajs scenarios do not
// load it, and the warning would cut their progress line. Every other warning is printed.
const printers = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning') return;
  for (const print of printers) print(warning);
});

import { ONCELY_SCENARIOS, type ScenarioInput, type ScenarioResult } from './config.js';
import { peakRssMb, sampleMemory } from './measure.js';
import type { Outcome } from './scenarios/types.js';
import { percentile } from './stats.js';

async function runScenario(input: ScenarioInput): Promise<Outcome> {
  const config = ONCELY_SCENARIOS[input.scenario];
  if (config) return (await import('./scenarios/oncely.js')).oncely(input, config);
  switch (input.scenario) {
    case 'kafkajs-raw':
      return (await import('./scenarios/kafkajs-raw.js')).kafkajsRaw(input);
    case 'kafkajs-json':
      return (await import('./scenarios/kafkajs-raw.js')).kafkajsRaw(input, { parse: true });
    case 'platformatic-raw':
      return (await import('./scenarios/platformatic-raw.js')).platformaticRaw(input);
    case 'pg-copy':
      return (await import('./scenarios/pg-copy.js')).pgCopy(input);
    case 'psql-copy':
      return (await import('./scenarios/psql-copy.js')).psqlCopy(input);
    case 'naive':
      return (await import('./scenarios/naive.js')).naive(input);
    default:
      throw new Error(`bench: no runner for scenario ${input.scenario}`);
  }
}

async function main(): Promise<void> {
  const input = JSON.parse(process.env.BENCH_INPUT ?? 'null') as ScenarioInput | null;
  if (!input) throw new Error('bench/scenario.ts is started by bench/main.ts (BENCH_INPUT is not set)');
  const loadStart = loadavg()[0]!;
  const memory = sampleMemory();
  const wall0 = performance.now();
  const o = await runScenario(input);
  const wallMs = performance.now() - wall0;
  const memoryAtPeak = memory();
  const seconds = o.window.activeMs / 1000;
  const bytes = o.records * input.recordBytes;
  const result: ScenarioResult = {
    scenario: input.scenario,
    run: input.run,
    ok: o.ok,
    ...(o.skipped ? { skipped: true } : {}),
    check: o.check,
    records: o.records,
    bytes,
    wallMs,
    activeMs: o.window.activeMs,
    recordsPerSec: o.skipped ? 0 : o.records / seconds,
    mbPerSec: o.skipped ? 0 : bytes / 1_048_576 / seconds,
    ...(o.commitDurations
      ? {
          commitP50Ms: percentile(o.commitDurations, 50),
          commitP99Ms: percentile(o.commitDurations, 99),
          commits: o.commitDurations.length,
        }
      : {}),
    peakRssMb: peakRssMb(),
    memoryAtPeak,
    cpuSec: o.window.cpuSec,
    ...(o.window.systemSec === undefined ? {} : { cpuSystemSec: o.window.systemSec }),
    cpuUsPerRecord: o.records > 0 ? (o.window.cpuSec * 1e6) / o.records : Number.NaN,
    elu: o.window.elu,
    ...(o.stages ? { stages: o.stages } : {}),
    loadStart,
    loadEnd: loadavg()[0]!,
  };
  await new Promise<void>((resolve, reject) => process.send!(result, (e: Error | null) => (e ? reject(e) : resolve())));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
