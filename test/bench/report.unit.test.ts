/**
 * The benchmark's PASS/MISS table: ratios are taken within a run and then the median over runs,
 * CPU per record is the median of the runs' figures, a skipped or failed scenario gives n/a, not a
 * figure.
 */
import { describe, expect, it } from 'vitest';
import { runOrder, SCENARIOS, type ScenarioName, type ScenarioResult } from '../../bench/config.js';
import { evaluateTargets, orderBalanced, summarize } from '../../bench/report.js';

function result(scenario: ScenarioName, run: number, recordsPerSec: number, extra: Partial<ScenarioResult> = {}): ScenarioResult {
  return {
    scenario,
    run,
    ok: true,
    check: 'ok',
    records: 1000,
    bytes: 159_000,
    wallMs: 1000,
    activeMs: 1000,
    recordsPerSec,
    mbPerSec: 1,
    peakRssMb: 150,
    cpuSec: 1,
    cpuUsPerRecord: 5,
    elu: 1,
    loadStart: 0,
    loadEnd: 0,
    ...extra,
  };
}

/** One run's results: rates, and CPU µs/record for rows and ledger. */
function run(
  n: number,
  r: { kafka: number; psql: number; rows: number; ledger: number; unfenced: number; cpuRows: number; cpuLedger: number },
) {
  return [
    result('kafkajs-raw', n, r.kafka),
    result('pg-copy', n, r.psql * 0.9),
    result('psql-copy', n, r.psql),
    result('oncely-batch-rows', n, r.rows, { cpuUsPerRecord: r.cpuRows }),
    result('oncely-batch-ledger', n, r.ledger, { cpuUsPerRecord: r.cpuLedger, peakRssMb: 120 + n * 40 }),
    result('oncely-batch-rows-unfenced', n, r.unfenced),
  ];
}

describe('runOrder', () => {
  it('runs 6 and 8 back to back, 6 first in odd runs and 8 first in even ones, the rest in order', () => {
    const numbers = (run: number) => runOrder(SCENARIOS, run).map((s) => SCENARIOS.indexOf(s) + 1);
    expect(numbers(1)).toEqual([1, 2, 3, 4, 5, 6, 8, 7, 9, 10, 11]);
    expect(numbers(2)).toEqual([1, 2, 3, 4, 5, 8, 6, 7, 9, 10, 11]);
    expect(numbers(3)).toEqual(numbers(1));
  });

  it('leaves a selection without both of them as it is', () => {
    const some: ScenarioName[] = ['kafkajs-raw', 'oncely-batch-rows-unfenced', 'platformatic-raw'];
    expect(runOrder(some, 2)).toEqual(some);
    expect(runOrder(['oncely-batch-rows-unfenced', 'oncely-batch-rows'], 1)).toEqual([
      'oncely-batch-rows',
      'oncely-batch-rows-unfenced',
    ]);
  });
});

const byName = (targets: ReturnType<typeof evaluateTargets>) => new Map(targets.map((t) => [t.name, t]));

describe('evaluateTargets', () => {
  it('judges ratios within each run and takes the median over runs', () => {
    const results = [
      // Run 1: everything fast; run 2: everything slow (a loaded machine); the ratios agree.
      ...run(1, { kafka: 400, psql: 200, rows: 120, ledger: 300, unfenced: 125, cpuRows: 3.9, cpuLedger: 3.0 }),
      ...run(2, { kafka: 200, psql: 100, rows: 50, ledger: 150, unfenced: 50, cpuRows: 4.2, cpuLedger: 3.2 }),
      ...run(3, { kafka: 300, psql: 300, rows: 180, ledger: 200, unfenced: 200, cpuRows: 4.1, cpuLedger: 3.6 }),
    ];
    const t = byName(evaluateTargets(results, 3));
    expect(t.get('worker CPU per record, batch ledger')).toMatchObject({ value: 3.2, status: 'PASS' });
    expect(t.get('worker CPU per record, batch rows')).toMatchObject({ value: 4.1, status: 'MISS' });
    // rows ÷ min(kafka, psql): 120/200, 50/100, 180/300 → 0.6, 0.5, 0.6.
    expect(t.get('batch rows vs ceilings')!.perRun).toEqual([0.6, 0.5, 0.6]);
    expect(t.get('batch rows vs ceilings')).toMatchObject({ value: 0.6, status: 'PASS' });
    // ledger ÷ kafka: 0.75, 0.75, 0.667.
    expect(t.get('batch ledger vs Kafka ceiling')).toMatchObject({ value: 0.75, status: 'PASS' });
    // Peak RSS: the largest of any oncely run (120 + 3 × 40).
    expect(t.get('oncely worker peak RSS')).toMatchObject({ value: 240, status: 'MISS' });
    // Fence cost 1 − rows/unfenced: 4%, 0%, 10%; 6 went first in runs 1 and 3 (median 7%), 8 in
    // run 2 (0%): order-balanced 3.5%, where the plain median (4%) leans to the order with two runs.
    const fence = t.get('fence cost')!;
    expect(fence.perRun.map((v) => Math.round(v! * 10) / 10)).toEqual([4, 0, 10]);
    expect(fence.value).toBeCloseTo(3.5);
    expect(fence.status).toBe('PASS');
    expect(t.get('fence cost, plain median of the runs')!.value).toBeCloseTo(4);
    // The same pairs in CPU per record (rows 3.9 / 4.2 / 4.1 against the unfenced default of 5).
    const cpu = t.get('fence cost in worker CPU')!;
    expect(cpu.perRun.map((v) => Math.round(v! * 10) / 10)).toEqual([-1.1, -0.8, -0.9]);
    expect(cpu).toMatchObject({ status: 'info', digits: 2 });
    expect(t.get('fence cost in worker CPU, %')!.value).toBeCloseTo(-18);
    expect(t.get('COPY ceiling vs psql')).toMatchObject({ status: 'info' });
    expect(t.get('COPY ceiling vs psql')!.value).toBeCloseTo(0.9);
  });

  it('sets the ledger against reading and parsing (11): the ratio, and the CPU it spends beyond', () => {
    const results = [1, 2, 3].flatMap((n) => [
      ...run(n, { kafka: 400, psql: 200, rows: 120, ledger: 240 + 10 * n, unfenced: 125, cpuRows: 3.9, cpuLedger: 3 + n / 10 }),
      result('kafkajs-json', n, 300, { cpuUsPerRecord: 2.5 }),
    ]);
    const t = byName(evaluateTargets(results, 3));
    // 250, 260, 270 ÷ 300 within each run; the median is the middle run's.
    expect(t.get('batch ledger vs reading and parsing')).toMatchObject({ status: 'info' });
    expect(t.get('batch ledger vs reading and parsing')!.value).toBeCloseTo(260 / 300);
    // 3.1, 3.2, 3.3 − 2.5.
    const beyond = t.get('worker CPU per record beyond reading and parsing')!;
    expect(beyond.perRun.map((v) => Math.round(v! * 10) / 10)).toEqual([0.6, 0.7, 0.8]);
    expect(beyond).toMatchObject({ status: 'info', digits: 2 });
    expect(beyond.value).toBeCloseTo(0.7);
    // Without 11 in the run: no figure, not a made-up one.
    const without = byName(
      evaluateTargets(
        results.filter((r) => r.scenario !== 'kafkajs-json'),
        3,
      ),
    );
    expect(without.get('batch ledger vs reading and parsing')!.value).toBeUndefined();
  });

  it('gives n/a where a ceiling was skipped or a scenario failed', () => {
    const results = run(1, { kafka: 400, psql: 200, rows: 120, ledger: 300, unfenced: 125, cpuRows: 3.9, cpuLedger: 3.0 }).map(
      (r) =>
        r.scenario === 'psql-copy'
          ? { ...r, skipped: true, recordsPerSec: 0 }
          : r.scenario === 'oncely-batch-ledger'
            ? { ...r, ok: false }
            : r,
    );
    const t = byName(evaluateTargets(results, 1));
    expect(t.get('batch rows vs ceilings')).toMatchObject({ value: undefined, status: 'n/a' });
    expect(t.get('batch ledger vs Kafka ceiling')!.status).toBe('n/a');
    expect(t.get('worker CPU per record, batch ledger')!.status).toBe('n/a');
    expect(t.get('worker CPU per record, batch rows')).toMatchObject({ value: 3.9, status: 'PASS' });
    const psql = summarize(results, 1).find((s) => s.scenario === 'psql-copy')!;
    expect(psql).toMatchObject({ skipped: 1, failed: 0, recordsPerSec: undefined });
  });
});

describe('orderBalanced', () => {
  it('weighs the runs where 6 went first and those where 8 did the same, whatever the number of runs', () => {
    expect(orderBalanced([-30, 16, -1])).toBeCloseTo(0.25);
    expect(orderBalanced([2, 4, 6, 8])).toBeCloseTo(5);
    expect(orderBalanced([7])).toBe(7);
    expect(orderBalanced([undefined, 3, undefined])).toBe(3);
    expect(orderBalanced([])).toBeUndefined();
  });

  it('makes a fence cost that is an order effect alone come out near 0', () => {
    // The first of a pair 10% faster, the fence free: 6 first gives -11.1%, 8 first +10%.
    const pair = (n: number, first: 'rows' | 'unfenced') => [
      result('oncely-batch-rows', n, first === 'rows' ? 110 : 100),
      result('oncely-batch-rows-unfenced', n, first === 'rows' ? 100 : 110),
    ];
    const t = byName(evaluateTargets([...pair(1, 'rows'), ...pair(2, 'unfenced'), ...pair(3, 'rows')], 3));
    expect(t.get('fence cost')!.value).toBeCloseTo(-0.5, 0);
    expect(t.get('fence cost, plain median of the runs')!.value).toBeCloseTo(-10, 0);
  });
});

describe('the fence in commit latency', () => {
  it('is the difference of the p50 commit latencies of 6 and 8 within each run', () => {
    const pair = (n: number, fenced: number, unfenced: number) => [
      result('oncely-batch-rows', n, 100, { commitP50Ms: fenced, cpuUsPerRecord: 4.2 }),
      result('oncely-batch-rows-unfenced', n, 100, { commitP50Ms: unfenced, cpuUsPerRecord: 4.0 }),
    ];
    const t = byName(evaluateTargets([...pair(1, 90, 87), ...pair(2, 60, 70), ...pair(3, 80, 78)], 3));
    // Order-balanced: the runs where 6 went first (1, 3: median 2.5) and the one where 8 did (-10) weigh the same.
    expect(t.get('fence cost in commit latency')).toMatchObject({ perRun: [3, -10, 2], value: -3.75, status: 'info' });
    expect(t.get('fence cost in worker CPU')!.value).toBeCloseTo(0.2);
    expect(t.get('fence cost in worker CPU, %')!.value).toBeCloseTo(5);
    expect(t.get('fence cost')).toMatchObject({ value: 0, status: 'PASS' });
  });
});
