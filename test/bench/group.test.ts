/**
 * The worker processes of `pnpm bench:scale` and `pnpm bench:recovery --kill` (bench/worker.ts,
 * compiled, run by bench/group.ts) must apply every record exactly once: several workers on one
 * group share the partitions, and a worker SIGKILLed mid-run is replaced by a new process that
 * takes its partitions over once its lease runs out. The group's progress (the offsets table) and
 * the workers' own reports must agree with the table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildForBench } from '../../bench/build.js';
import { totalCents } from '../../bench/data.js';
import { BenchGroup } from '../../bench/group.js';
import { prepareTopic } from '../../bench/produce.js';
import { brokers, databaseUrl, deleteTopic } from '../support/fixtures.js';

const records = 6_000;
const partitions = 3;
const topic = `oncely-bench-test-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  buildForBench(() => {});
  await prepareTopic({ brokers: brokers(), topic, partitions, records, valueBytes: 150, log: () => {} });
});

afterAll(() => deleteTopic(topic));

function group(handler: 'batch-ledger' | 'batch-rows', leaseMs?: number, gated = false) {
  return new BenchGroup({
    brokers: brokers(),
    databaseUrl: databaseUrl(),
    topic,
    config: { handler, reader: 'kafkajs', fenced: true },
    // Small batches: the run lasts long enough to be shared and to be killed in.
    batchMaxRecords: 100,
    poolMax: 4,
    timings: leaseMs === undefined ? undefined : { leaseMs, sessionTimeoutMs: leaseMs },
    gated,
  });
}

describe('bench worker processes', () => {
  it('two workers on one group apply every record once between them', async () => {
    const g = group('batch-rows');
    await g.open();
    try {
      const workers = [g.start(), g.start()];
      await Promise.all(workers.map((w) => w.ready));
      const samples = await g.follow({ records, until: Date.now() + 120_000 });
      expect(samples.at(-1)!.applied).toBe(records);
      const finals = await Promise.all(workers.map((w) => w.stop()));
      expect(finals.reduce((n, f) => n + f.committed, 0)).toBe(records);
      expect(finals.every((f) => f.cpuSec > 0 && f.peakRssMb > 0)).toBe(true);
      expect(await g.check({ records, totalCents: totalCents(records).toString() })).toMatchObject({ ok: true });
    } finally {
      await g.close();
    }
  });

  it('gated workers share the partitions without applying a record, then apply every record once after go', async () => {
    const g = group('batch-ledger', undefined, true);
    await g.open();
    try {
      const workers = [g.start(), g.start()];
      await Promise.all(workers.map((w) => w.ready));
      // bench:scale's settled group: every partition held, by both workers, none holding more than 2.
      const settling = await g.follow({
        records: Number.POSITIVE_INFINITY,
        until: Date.now() + 60_000,
        onSample: (s) => s.held === partitions && s.owners === 2 && s.most <= 2,
      });
      expect(settling.at(-1)).toMatchObject({ held: partitions, owners: 2, applied: 0 });
      expect(settling.every((s) => s.applied === 0)).toBe(true);
      await new Promise((r) => setTimeout(r, 1_500));
      expect((await g.sample()).applied).toBe(0);
      for (const w of workers) w.go();
      const samples = await g.follow({ records, until: Date.now() + 120_000 });
      expect(samples.at(-1)!.applied).toBe(records);
      const finals = await Promise.all(workers.map((w) => w.stop()));
      expect(finals.reduce((n, f) => n + f.committed, 0)).toBe(records);
      expect(finals.every((f) => f.committed > 0 && f.cpuSec > 0)).toBe(true);
      expect(await g.check({ records, totalCents: totalCents(records).toString() })).toMatchObject({ ok: true });
    } finally {
      await g.close();
    }
  });

  it('a worker SIGKILLed mid-run is replaced, and every record is applied once', async () => {
    const g = group('batch-ledger', 1_000);
    await g.open();
    try {
      const first = g.start();
      await first.ready;
      const before = await g.follow({ records: records / 4, until: Date.now() + 120_000 });
      expect(before.at(-1)!.applied).toBeGreaterThanOrEqual(records / 4);
      await first.kill();
      await expect(first.final).rejects.toThrow(/exited with SIGKILL/);
      const second = g.start();
      const after = await g.follow({ records, until: Date.now() + 120_000 });
      expect(after.at(-1)!.applied).toBe(records);
      const final = await second.stop();
      expect(final.committed).toBeLessThan(records);
      expect(await g.check({ records, totalCents: totalCents(records).toString() })).toMatchObject({ ok: true });
    } finally {
      await g.close();
    }
  });
});
