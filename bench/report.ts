/**
 * Turns the scenario results of one `pnpm bench` into medians, the targets of issue 6 (PASS/MISS),
 * and a markdown report.
 */
import type { BenchArgs, ScenarioName, ScenarioResult, StageTimings } from './config.js';
import { SCENARIOS, TITLES } from './config.js';
import type { ProfileSummary } from './profile.js';
import { median } from './stats.js';

/** Median figures of one scenario over the runs. */
export interface ScenarioSummary {
  scenario: ScenarioName;
  runs: number;
  failed: number;
  records: number | undefined;
  recordsPerSec: number | undefined;
  /** Each run's records/s, in run order. */
  perRun: Array<number | undefined>;
  mbPerSec: number | undefined;
  wallMs: number | undefined;
  activeMs: number | undefined;
  commitP50Ms: number | undefined;
  commitP99Ms: number | undefined;
  peakRssMb: number | undefined;
  maxPeakRssMb: number | undefined;
  cpuSec: number | undefined;
  elu: number | undefined;
  checks: string[];
  /** Highest 1-minute load average seen at a start or end of a run (2 cores: above ~2 means others were busy). */
  maxLoad: number;
  stages: StageTimings | undefined;
}

export interface TargetResult {
  name: string;
  /** The figure and what it is compared with, in words. */
  figure: string;
  value: number | undefined;
  goal: string;
  status: 'PASS' | 'MISS' | 'n/a';
  /** Each run's value (ratios are taken within a run, then the median). */
  perRun: Array<number | undefined>;
}

export function summarize(results: ScenarioResult[], runs: number): ScenarioSummary[] {
  const out: ScenarioSummary[] = [];
  for (const scenario of SCENARIOS) {
    const rs = results.filter((r) => r.scenario === scenario);
    if (rs.length === 0) continue;
    const good = rs.filter((r) => r.ok);
    const m = (f: (r: ScenarioResult) => number | undefined) => median(good.map(f));
    const perRun = Array.from({ length: runs }, (_, i) => {
      const r = rs.find((x) => x.run === i + 1);
      return r?.ok ? r.recordsPerSec : undefined;
    });
    const stageRuns = good.filter((r) => r.stages).map((r) => r.stages!);
    out.push({
      scenario,
      runs: rs.length,
      failed: rs.length - good.length,
      records: m((r) => r.records),
      recordsPerSec: m((r) => r.recordsPerSec),
      perRun,
      mbPerSec: m((r) => r.mbPerSec),
      wallMs: m((r) => r.wallMs),
      activeMs: m((r) => r.activeMs),
      commitP50Ms: m((r) => r.commitP50Ms),
      commitP99Ms: m((r) => r.commitP99Ms),
      peakRssMb: m((r) => r.peakRssMb),
      maxPeakRssMb: good.length ? Math.max(...good.map((r) => r.peakRssMb)) : undefined,
      cpuSec: m((r) => r.cpuSec),
      elu: m((r) => r.elu),
      maxLoad: Math.max(...rs.map((r) => Math.max(r.loadStart, r.loadEnd))),
      checks: rs.map((r) => `run ${r.run}: ${r.ok ? 'ok' : 'FAILED'}: ${r.check}`),
      stages: stageRuns.length
        ? (Object.fromEntries(
            Object.keys(stageRuns[0]!).map((k) => [k, median(stageRuns.map((s) => s[k as keyof StageTimings]))]),
          ) as unknown as StageTimings)
        : undefined,
    });
  }
  return out;
}

export function evaluateTargets(results: ScenarioResult[], runs: number): TargetResult[] {
  const rate = (scenario: ScenarioName, run: number) => {
    const r = results.find((x) => x.scenario === scenario && x.run === run);
    return r?.ok ? r.recordsPerSec : undefined;
  };
  const ratio = (f: (run: number) => [number | undefined, number | undefined]) =>
    Array.from({ length: runs }, (_, i) => {
      const [a, b] = f(i + 1);
      return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
    });
  const minOf = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : Math.min(a, b);
  const target = (
    name: string,
    figure: string,
    goal: string,
    perRun: Array<number | undefined>,
    pass: (v: number) => boolean,
  ) => {
    const value = median(perRun);
    return {
      name,
      figure,
      goal,
      perRun,
      value,
      status: value === undefined ? 'n/a' : pass(value) ? 'PASS' : 'MISS',
    } as TargetResult;
  };
  const rss = results.filter((r) => r.ok && r.scenario.startsWith('oncely-')).map((r) => r.peakRssMb);
  const rssPerRun = Array.from({ length: runs }, (_, i) => {
    const v = results.filter((r) => r.ok && r.run === i + 1 && r.scenario.startsWith('oncely-')).map((r) => r.peakRssMb);
    return v.length ? Math.max(...v) : undefined;
  });
  const maxRss = rss.length ? Math.max(...rss) : undefined;
  return [
    target(
      'batch rows vs ceilings',
      '5 ÷ min(1, 2)',
      '≥ 0.50',
      ratio((r) => [rate('oncely-batch-rows', r), minOf(rate('kafkajs-raw', r), rate('pg-copy', r))]),
      (v) => v >= 0.5,
    ),
    target(
      'batch ledger vs Kafka ceiling',
      '6 ÷ 1',
      '≥ 0.60',
      ratio((r) => [rate('oncely-batch-ledger', r), rate('kafkajs-raw', r)]),
      (v) => v >= 0.6,
    ),
    target(
      'per-message vs naive',
      '4 ÷ 3',
      '≥ 3×',
      ratio((r) => [rate('oncely-message', r), rate('naive', r)]),
      (v) => v >= 3,
    ),
    target(
      'batch rows vs naive',
      '5 ÷ 3',
      '≥ 20×',
      ratio((r) => [rate('oncely-batch-rows', r), rate('naive', r)]),
      (v) => v >= 20,
    ),
    target(
      'fence cost',
      '5 ÷ 7',
      '≥ 0.90',
      ratio((r) => [rate('oncely-batch-rows', r), rate('oncely-batch-rows-unfenced', r)]),
      (v) => v >= 0.9,
    ),
    {
      name: 'oncely worker peak RSS',
      figure: 'max of 4–7, MB',
      goal: '≤ 300',
      perRun: rssPerRun,
      value: maxRss,
      status: maxRss === undefined ? 'n/a' : maxRss <= 300 ? 'PASS' : 'MISS',
    },
  ];
}

const num = (v: number | undefined, digits = 0) =>
  v === undefined ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function table(header: string[], rows: string[][]): string {
  const align = header.map((_h, i) => (i === 0 ? '---' : '---:'));
  return [header, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export interface ReportInput {
  args: BenchArgs;
  topic: string;
  produce: { reused: boolean; produceMs: number; recordsPerSec: number };
  summaries: ScenarioSummary[];
  targets: TargetResult[];
  profiles: Array<{ scenario: ScenarioName; run: number; summary: ProfileSummary }>;
  environment: string;
}

export function markdown(r: ReportInput): string {
  const { args } = r;
  const lines: string[] = [];
  lines.push(
    `# oncely benchmark${args.quick ? ' (quick)' : ''}`,
    '',
    `${r.environment}`,
    '',
    `Topic \`${r.topic}\`: ${num(args.records)} records (${args.valueBytes}-byte JSON values + 9-byte keys) in ${args.partitions} partitions` +
      (r.produce.reused
        ? ', reused.'
        : `, produced in ${num(r.produce.produceMs / 1000, 1)} s (${num(r.produce.recordsPerSec)} records/s).`),
    `oncely: batchMaxRecords ${args.batchMaxRecords}, fetchMaxBytesPerPartition ${args.fetchMaxBytesPerPartition ?? 'default'}; naive: ${num(Math.min(args.naiveRecords, args.records))} records.` +
      ` ${args.runs > 1 ? `Medians of ${args.runs} runs` : 'One run'}; every scenario in its own process, from a cold start, on a fresh table.`,
    '',
    'records/s and MB/s are over the active window: from ready (kafkajs: group joined; oncely: `start()` resolved; COPY: first byte) to the last record applied. Wall time includes connecting, joining, claiming. Commit latency is the worker commit event `durationMs` (BEGIN to COMMIT, handler included). CPU is the child process only (Kafka and PostgreSQL share the same cores). ELU = event-loop utilization of the child. max load = the 1-minute load average at the start and end of each run (2 cores: more than ~2 means other work competed).',
    '',
  );
  lines.push(
    table(
      [
        'scenario',
        'records',
        'records/s',
        'MB/s',
        'wall s',
        'active s',
        'commit p50 ms',
        'commit p99 ms',
        'peak RSS MB',
        'CPU s',
        'ELU',
        'max load',
        'check',
      ],
      r.summaries.map((s) => [
        TITLES[s.scenario],
        num(s.records),
        args.runs > 1 ? `${num(s.recordsPerSec)} (${s.perRun.map((v) => num(v)).join(' / ')})` : num(s.recordsPerSec),
        num(s.mbPerSec, 1),
        num(s.wallMs === undefined ? undefined : s.wallMs / 1000, 1),
        num(s.activeMs === undefined ? undefined : s.activeMs / 1000, 2),
        num(s.commitP50Ms, 1),
        num(s.commitP99Ms, 1),
        num(s.maxPeakRssMb),
        num(s.cpuSec, 1),
        num(s.elu, 2),
        num(s.maxLoad, 1),
        s.failed === 0 ? 'ok' : `FAILED ${s.failed}/${s.runs}`,
      ]),
    ),
    '',
  );
  lines.push('## Targets', '');
  lines.push(
    table(
      ['target', 'figure', 'value', 'goal', 'per run', 'status'],
      r.targets.map((t) => {
        const d = t.name.includes('RSS') ? 0 : 2;
        return [t.name, t.figure, num(t.value, d), t.goal, t.perRun.map((v) => num(v, d)).join(' / '), `**${t.status}**`];
      }),
    ),
    '',
  );
  if (args.quick)
    lines.push('_Quick run: a smoke test; only completion and correct counts are checked, targets are indicative._', '');

  const staged = r.summaries.filter((s) => s.stages);
  if (staged.length) {
    lines.push(
      '## Stages (oncely, medians)',
      '',
      'fetch: the single fetch loop inside reader.fetch (busy = share of the active window). tx: store.runBatch per transaction; decode = codec, handler = the app function, store = the rest (BEGIN, fencing check, commit CAS, COMMIT, event-loop waits). idle: per partition, share of the window between its transactions.',
      '',
      table(
        [
          'scenario',
          'fetches',
          'fetch busy',
          'ms/fetch',
          'records/fetch',
          'transactions',
          'records/tx',
          'tx ms',
          'decode ms/tx',
          'handler ms/tx',
          'store ms/tx',
          'partition idle',
        ],
        staged.map((s) => {
          const t = s.stages!;
          const active = s.activeMs ?? 1;
          return [
            TITLES[s.scenario],
            num(t.fetches),
            `${num((100 * t.fetchMs) / active)}%`,
            num(t.fetchMs / t.fetches, 1),
            num(t.fetchedRecords / t.fetches),
            num(t.transactions),
            num((s.records ?? 0) / t.transactions),
            num(t.txMs / t.transactions, 2),
            num(t.decodeMs / t.transactions, 2),
            num(t.handlerMs / t.transactions, 2),
            num(t.storeMs / t.transactions, 2),
            `${num((100 * t.idleMs) / (active * args.partitions))}%`,
          ];
        }),
      ),
      '',
    );
  }
  for (const p of r.profiles) {
    lines.push(
      `## CPU profile: ${TITLES[p.scenario]} (run ${p.run})`,
      '',
      `${p.summary.file}, ${num(p.summary.totalMs)} ms sampled (main thread).`,
      '',
      table(
        ['area (self time)', 'ms', 'share'],
        p.summary.areas.map((a) => [a.area, num(a.ms), `${num(100 * a.share, 1)}%`]),
      ),
      '',
      table(
        ['function (self time)', 'area', 'ms', 'share'],
        p.summary.functions.map((f) => [`\`${f.fn}\``, f.area, num(f.ms), `${num(100 * f.share, 1)}%`]),
      ),
      '',
    );
  }
  lines.push('## Checks', '');
  for (const s of r.summaries) for (const c of s.checks) lines.push(`- ${TITLES[s.scenario]}: ${c}`);
  lines.push('');
  return lines.join('\n');
}
