/**
 * One scenario in its own process, so that its peak RSS is its own: main.ts forks this file with the
 * scenario's input in BENCH_INPUT and receives one ScenarioResult over IPC.
 */
import { loadavg } from 'node:os';
import type { ScenarioInput, ScenarioResult } from './config.js';
import { peakRssMb } from './measure.js';
import { kafkajsRaw } from './scenarios/kafkajs-raw.js';
import { naive } from './scenarios/naive.js';
import { oncely } from './scenarios/oncely.js';
import { pgCopy } from './scenarios/pg-copy.js';
import type { Outcome } from './scenarios/types.js';
import { percentile } from './stats.js';

async function runScenario(input: ScenarioInput): Promise<Outcome> {
  switch (input.scenario) {
    case 'kafkajs-raw':
      return kafkajsRaw(input);
    case 'pg-copy':
      return pgCopy(input);
    case 'naive':
      return naive(input);
    case 'oncely-message':
      return oncely(input, 'message');
    case 'oncely-batch-rows':
      return oncely(input, 'batch-rows');
    case 'oncely-batch-ledger':
      return oncely(input, 'batch-ledger');
    case 'oncely-batch-rows-unfenced':
      return oncely(input, 'batch-rows-unfenced');
  }
}

async function main(): Promise<void> {
  const input = JSON.parse(process.env.BENCH_INPUT ?? 'null') as ScenarioInput | null;
  if (!input) throw new Error('bench/scenario.ts is started by bench/main.ts (BENCH_INPUT is not set)');
  const loadStart = loadavg()[0]!;
  const wall0 = performance.now();
  const o = await runScenario(input);
  const wallMs = performance.now() - wall0;
  const seconds = o.window.activeMs / 1000;
  const bytes = o.records * input.recordBytes;
  const result: ScenarioResult = {
    scenario: input.scenario,
    run: input.run,
    ok: o.ok,
    check: o.check,
    records: o.records,
    bytes,
    wallMs,
    activeMs: o.window.activeMs,
    recordsPerSec: o.records / seconds,
    mbPerSec: bytes / 1_048_576 / seconds,
    ...(o.commitDurations
      ? {
          commitP50Ms: percentile(o.commitDurations, 50),
          commitP99Ms: percentile(o.commitDurations, 99),
          commits: o.commitDurations.length,
        }
      : {}),
    peakRssMb: peakRssMb(),
    cpuSec: o.window.cpuSec,
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
