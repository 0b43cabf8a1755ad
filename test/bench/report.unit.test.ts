/**
 * The benchmark's PASS/MISS table: ratios are taken within a run and then the median over runs,
 * CPU per record is the median of the runs' figures, a skipped or failed scenario gives n/a, not a
 * figure.
 */
import { describe, expect, it } from 'vitest';
import type { ScenarioName, ScenarioResult } from '../../bench/config.js';
import { evaluateTargets, summarize } from '../../bench/report.js';

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
    // Fence cost 1 − rows/unfenced: 4%, 0%, 10% → median 4%.
    const fence = t.get('fence cost')!;
    expect(fence.perRun.map((v) => Math.round(v! * 10) / 10)).toEqual([4, 0, 10]);
    expect(fence.status).toBe('PASS');
    expect(t.get('COPY ceiling vs psql')).toMatchObject({ status: 'info' });
    expect(t.get('COPY ceiling vs psql')!.value).toBeCloseTo(0.9);
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
