/**
 * One scenario in its own process, so that its peak RSS and CPU are its own: main.ts builds the
 * bench (bench/tsconfig.build.json) and forks the compiled file with plain node (the packages
 * from their dist/, no TypeScript loader) with the scenario's input in BENCH_INPUT, and receives
 * one ScenarioResult over IPC.
 */
import { loadavg } from 'node:os';
import { ONCELY_SCENARIOS, type ScenarioInput, type ScenarioResult } from './config.js';
import { peakRssMb, sampleMemory } from './measure.js';
import { kafkajsRaw } from './scenarios/kafkajs-raw.js';
import { naive } from './scenarios/naive.js';
import { oncely } from './scenarios/oncely.js';
import { pgCopy } from './scenarios/pg-copy.js';
import { platformaticRaw } from './scenarios/platformatic-raw.js';
import { psqlCopy } from './scenarios/psql-copy.js';
import type { Outcome } from './scenarios/types.js';
import { percentile } from './stats.js';

async function runScenario(input: ScenarioInput): Promise<Outcome> {
  const config = ONCELY_SCENARIOS[input.scenario];
  if (config) return oncely(input, config);
  switch (input.scenario) {
    case 'kafkajs-raw':
      return kafkajsRaw(input);
    case 'platformatic-raw':
      return platformaticRaw(input);
    case 'pg-copy':
      return pgCopy(input);
    case 'psql-copy':
      return psqlCopy(input);
    case 'naive':
      return naive(input);
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
