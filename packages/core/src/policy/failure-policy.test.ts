import { describe, expect, it } from 'vitest';
import { defineApp } from '../app/define-app.js';
import { json } from '../codec/codecs.js';
import { CodecError, NonRetriableError, RecordFailedError, StoreUnavailableError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { createWorker } from '../runtime/worker.js';
import { MemoryLog } from '../testing/memory-log.js';
import { MemoryStore, type MemoryTx } from '../testing/memory-store.js';
import { until } from '../testing/until.js';
import { sleep } from '../time.js';
import { judgeFailure } from './failure-policy.js';

const fast = {
  logger: silentLogger,
  fetchMaxWaitMs: 20,
  retryInitialDelayMs: 1,
  retryMaxDelayMs: 4,
  closeOnStop: false,
} as const;

function log10(partitions = 1): MemoryLog {
  const log = new MemoryLog().createTopic('t', partitions);
  for (let p = 0; p < partitions; p++)
    log.append(
      't',
      p,
      Array.from({ length: 10 }, (_, i) => ({ value: JSON.stringify({ i }) })),
    );
  return log;
}

const sumApp = (fail: (i: number, attempt: number) => Error | undefined) =>
  defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: json<{ i: number }>() }, (msg, ctx) => {
    ctx.tx.update<number[]>(`seen:${msg.partition}`, (v = []) => [...v, msg.value.i]);
    const e = fail(msg.value.i, ctx.attempt);
    if (e) throw e;
  });

describe('failure policy', () => {
  it('dead-letters a poison record after its retries, applies the good ones once, and moves on', async () => {
    const log = log10();
    const store = new MemoryStore();
    const dead: Array<[bigint, number, string]> = [];
    const w = createWorker(
      sumApp((i) => (i === 4 ? new Error('poison') : undefined)),
      {
        ...fast,
        store,
        reader: log,
        retryAttempts: 3,
      },
    );
    w.on('dead-letter', (d) => {
      dead.push([d.offset, d.attempts, d.reason]);
    });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 10n, 'past the poison record');
    await w.stop();
    expect(store.data.get('seen:0')).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9]);
    expect(dead).toEqual([[4n, 3, 'exhausted']]);
    expect(store.deadLetters).toHaveLength(1);
    expect(store.deadLetters[0]?.record.value?.toString()).toBe('{"i":4}');
    expect(store.deadLetters[0]?.error.message).toMatch(/poison/);
    // The dead letter and the move past it are one commit: the log has a 4 → 5 entry with 0 records.
    expect(store.log.some((l) => l.from === 4n && l.to === 5n && l.recordCount === 0)).toBe(true);
  });

  it('dead-letters NonRetriableError and undecodable records at once', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    log.append('t', 0, [{ value: '{"i":0}' }, { value: 'not json' }, { value: '{"i":2}' }, { value: '{"i":3}' }]);
    const store = new MemoryStore();
    const dead: Array<[bigint, number, string]> = [];
    const w = createWorker(
      sumApp((i) => (i === 2 ? new NonRetriableError('account closed') : undefined)),
      { ...fast, store, reader: log },
    );
    w.on('dead-letter', (d) => {
      dead.push([d.offset, d.attempts, d.reason]);
    });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 4n, 'caught up');
    await w.stop();
    expect(dead).toEqual([
      [1n, 1, 'decode'],
      [2n, 1, 'non-retriable'],
    ]);
    expect(store.data.get('seen:0')).toEqual([0, 3]);
  });

  it('isolates a poison record inside a batch handler by bisection', async () => {
    const log = log10();
    const store = new MemoryStore();
    const app = defineApp<MemoryTx>({ group: 'g' }).handleBatch({ topic: 't', codec: json<{ i: number }>() }, (batch, ctx) => {
      for (const m of batch.messages) {
        if (m.value.i === 7) throw new Error('bad row');
        ctx.tx.update<number[]>('seen', (v = []) => [...v, m.value.i]);
      }
    });
    const w = createWorker(app, { ...fast, store, reader: log, retryAttempts: 2 });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 10n, 'caught up');
    await w.stop();
    expect(store.data.get('seen')).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9]);
    expect(store.deadLetters.map((d) => d.record.offset)).toEqual([7n]);
  });

  it("stops only the failing partition with onExhausted: 'stop-partition'; the others go on", async () => {
    const log = log10(2);
    const store = new MemoryStore();
    const stopped: bigint[] = [];
    const app = defineApp<MemoryTx>({ group: 'g' }).handle(
      { topic: 't', codec: json<{ i: number }>(), retry: { attempts: 2, onExhausted: 'stop-partition' } },
      (msg, ctx) => {
        if (msg.partition === 0 && msg.value.i === 3) throw new Error('needs a fix');
        ctx.tx.update<number>(`n:${msg.partition}`, (v = 0) => v + 1);
      },
    );
    const w = createWorker(app, { ...fast, store, reader: log });
    w.on('partition-stopped', (s) => {
      stopped.push(s.offset);
    });
    await w.start();
    await until(() => w.progress()[1]?.nextOffset === 10n && stopped.length === 1, 'partition 1 done, partition 0 stopped');
    const p0 = w.progress()[0]!;
    expect(p0.nextOffset).toBe(3n);
    expect(p0.stopped).toEqual({ offset: 3n, error: 'needs a fix', code: 'HANDLER_FAILED' });
    expect(w.state).toBe('running');
    await w.stop();
    expect(store.data.get('n:0')).toBe(3);
    expect(store.data.get('n:1')).toBe(10);
    expect(store.deadLetters).toHaveLength(0);
  });

  it('does not spend the retry budget on store outages: a good record is never dead-lettered for them', async () => {
    const log = log10();
    const store = new MemoryStore();
    let outages = 12;
    const w = createWorker(
      sumApp((i) => (i === 5 && outages-- > 0 ? new StoreUnavailableError('connection terminated') : undefined)),
      { ...fast, store, reader: log, retryAttempts: 2 },
    );
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 10n, 'caught up after the outage');
    await w.stop();
    expect(store.deadLetters).toHaveLength(0);
    expect(store.data.get('seen:0')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('a handler that fails on every record trips the circuit breaker: N dead letters, then the partition stops', async () => {
    const log = log10();
    const store = new MemoryStore();
    const stops: string[] = [];
    const w = createWorker(
      sumApp(() => new NonRetriableError('relation "ledger" does not exist')),
      { ...fast, store, reader: log, maxConsecutiveDeadLetters: 3 },
    );
    w.on('partition-stopped', (s) => {
      stops.push(`${s.offset}:${(s.error as { code?: string }).code}`);
    });
    await w.start();
    await until(() => w.progress()[0]?.stopped !== undefined, 'the partition stopped');
    const p0 = w.progress()[0]!;
    await w.stop();
    expect(store.deadLetters.map((d) => d.record.offset)).toEqual([0n, 1n, 2n]);
    expect(p0).toMatchObject({ nextOffset: 3n, deadLetteredRecords: 3, committedRecords: 0 });
    expect(p0.stopped?.code).toBe('CIRCUIT_OPEN');
    expect(p0.stopped?.error).toMatch(/maxConsecutiveDeadLetters 3.*oncely dlq requeue/);
    expect(stops).toEqual(['3:CIRCUIT_OPEN']);
  });

  it('an applied record resets the circuit breaker; a handler may turn it off', async () => {
    const log = log10();
    const store = new MemoryStore();
    // 0, 1 fail; 2 applies; 3, 4 fail; 5 applies; 6, 7, 8 fail; 9 applies: never 3 in a row but the last.
    const failing = new Set([0, 1, 3, 4, 6, 7, 8]);
    const w = createWorker(
      sumApp((i) => (failing.has(i) ? new NonRetriableError('bad') : undefined)),
      { ...fast, store, reader: log, maxConsecutiveDeadLetters: 3 },
    );
    await w.start();
    await until(() => w.progress()[0]?.stopped !== undefined || w.progress()[0]?.nextOffset === 10n, 'done or stopped');
    const p0 = w.progress()[0]!;
    await w.stop();
    expect(p0.stopped?.code).toBe('CIRCUIT_OPEN');
    expect(p0.nextOffset).toBe(9n);
    expect(store.data.get('seen:0')).toEqual([2, 5]);

    const off = new MemoryStore();
    const app = defineApp<MemoryTx>({ group: 'g' }).handle(
      { topic: 't', codec: json<{ i: number }>(), retry: { maxConsecutiveDeadLetters: 0 } },
      () => {
        throw new NonRetriableError('bad');
      },
    );
    const w2 = createWorker(app, { ...fast, store: off, reader: log10(), maxConsecutiveDeadLetters: 3 });
    await w2.start();
    await until(() => w2.progress()[0]?.nextOffset === 10n, 'every record dead-lettered');
    await w2.stop();
    expect(off.deadLetters).toHaveLength(10);
    expect(w2.progress()[0]?.stopped).toBeUndefined();
  });
});

describe('crash budget (after an unclean hand-over)', () => {
  /** An earlier process claimed the partition, wrote `evidence` and died (no release, no commit). */
  async function diedWith(store: MemoryStore, evidence: Parameters<MemoryStore['recordInFlight']>[1]) {
    const dead = await store.claim({ group: 'g', topic: 't', partition: 0, workerId: 'died', initialOffset: 2n, leaseMs: 1000 });
    await store.recordInFlight(dead, evidence);
  }
  const ranWith = (ran: number[]) =>
    sumApp((i) => {
      ran.push(i);
      return undefined;
    });

  it('stops the partition, by default, on a record alone in flight at crashBudget deaths in a row, without running it', async () => {
    const store = new MemoryStore();
    await diedWith(store, { from: 2n, to: 3n, deaths: 7, alone: 3 });
    const ran: number[] = [];
    const stops: string[] = [];
    const w = createWorker(ranWith(ran), { ...fast, store, reader: log10(), crashBudget: 3 });
    w.on('partition-stopped', (s) => {
      stops.push(`${s.offset}:${s.error.name}`);
    });
    await w.start();
    await until(() => w.progress()[0]?.stopped !== undefined, 'stopped');
    const p0 = w.progress()[0]!;
    await w.stop();
    expect(ran).toEqual([]);
    expect(store.deadLetters).toHaveLength(0);
    expect(p0.nextOffset).toBe(2n);
    expect(p0.stopped?.code).toBe('CRASH_LOOP');
    expect(p0.stopped?.error).toMatch(/died 3 times in a row while record t\/0\/2 was applied alone \(crashBudget 3/);
    expect(stops).toEqual(['2:WorkerCrashedError']);
  });

  it("dead-letters that record instead with onCrashLoop: 'dead-letter', and applies the rest", async () => {
    const store = new MemoryStore();
    await diedWith(store, { from: 2n, to: 3n, deaths: 7, alone: 3 });
    const ran: number[] = [];
    const reasons: string[] = [];
    const w = createWorker(ranWith(ran), { ...fast, store, reader: log10(), crashBudget: 3, onCrashLoop: 'dead-letter' });
    w.on('dead-letter', (d) => {
      reasons.push(`${d.offset}:${d.reason}`);
    });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 10n, 'caught up');
    await w.stop();
    expect(reasons).toEqual(['2:crash']);
    expect(ran).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(store.deadLetters[0]?.error).toMatchObject({ name: 'WorkerCrashedError', code: 'CRASH_LOOP' });
  });

  it('applies a record below the budget and clears its evidence (deaths shared with others are not charged to it)', async () => {
    const store = new MemoryStore();
    // Nine deaths with record 2 in flight, two of them with it alone: below crashBudget 3.
    await diedWith(store, { from: 2n, to: 3n, deaths: 9, alone: 2 });
    const ran: number[] = [];
    const w = createWorker(ranWith(ran), { ...fast, store, reader: log10(), crashBudget: 3 });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 10n, 'caught up');
    await w.stop();
    expect(ran).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    expect(store.deadLetters).toHaveLength(0);
    const again = await store.claim({ group: 'g', topic: 't', partition: 0, workerId: 'next', initialOffset: 0n, leaseMs: 1000 });
    expect(again.crash).toBeUndefined();
  });

  it('runs the first batch after an unclean hand-over with no history at full size, its range written first', async () => {
    const store = new MemoryStore();
    await diedWith(store, null);
    const ran: number[] = [];
    const w = createWorker(ranWith(ran), { ...fast, store, reader: log10() });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 10n, 'caught up');
    await w.stop();
    // One transaction for the 8 records, not one per record.
    expect(store.log.map((l) => [l.from, l.to])).toEqual([[2n, 10n]]);
    expect(ran).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('narrows alone in the worker: the other partitions commit only once the narrowing is done', async () => {
    const store = new MemoryStore();
    await diedWith(store, { from: 2n, to: 10n, deaths: 2, alone: 0 });
    await sleep(1100); // the dead holder's lease runs out: all three partitions are claimed in one round
    const w = createWorker(ranWith([]), { ...fast, store, reader: log10(3) });
    await w.start();
    await until(() => w.progress().length === 3 && w.progress().every((p) => p.nextOffset === 10n), 'caught up');
    await w.stop();
    const commits = store.log.filter((l) => l.recordCount > 0).map((l) => `${l.partition}:${l.from}-${l.to}`);
    // Partition 0's four pieces first, each alone; partitions 1 and 2 only after them.
    expect(commits.slice(0, 4)).toEqual(['0:2-6', '0:6-8', '0:8-9', '0:9-10']);
    expect(commits.slice(4).sort()).toEqual(['1:0-10', '2:0-10']);
  });

  it('narrows a range in flight at two deaths by halves; the good halves commit without a death', async () => {
    const store = new MemoryStore();
    await diedWith(store, { from: 2n, to: 10n, deaths: 2, alone: 0 });
    const w = createWorker(ranWith([]), { ...fast, store, reader: log10() });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 10n, 'caught up');
    await w.stop();
    expect(store.log.map((l) => [l.from, l.to])).toEqual([
      [2n, 6n],
      [6n, 8n],
      [8n, 9n],
      [9n, 10n],
    ]);
    expect(store.deadLetters).toHaveLength(0);
  });
});

describe('judgeFailure', () => {
  const policy = {
    attempts: 3,
    maxElapsedMs: 1000,
    initialDelayMs: 100,
    maxDelayMs: 150,
    onExhausted: 'dead-letter',
    maxConsecutiveDeadLetters: 10,
  } as const;
  const failed = (cause: unknown) => new RecordFailedError('t', 0, 1n, cause);

  it('retries a retriable failure with a back-off inside [d/2, d] until the attempts or the time are spent', () => {
    const first = judgeFailure(policy, failed(new Error('flaky')), 1, 0);
    expect(first.kind).toBe('retry');
    if (first.kind === 'retry') expect(first.delayMs).toBeGreaterThanOrEqual(50);
    if (first.kind === 'retry') expect(first.delayMs).toBeLessThanOrEqual(100);
    const capped = judgeFailure(policy, failed(new Error('flaky')), 2, 0);
    if (capped.kind === 'retry') expect(capped.delayMs).toBeLessThanOrEqual(150);
    expect(judgeFailure(policy, failed(new Error('flaky')), 3, 0)).toEqual({ kind: 'dead-letter', reason: 'exhausted' });
    expect(judgeFailure(policy, failed(new Error('flaky')), 1, 1000)).toEqual({ kind: 'dead-letter', reason: 'exhausted' });
  });

  it('gives up at once on a non-retriable or undecodable record, and stops the partition when told to', () => {
    expect(judgeFailure(policy, failed(new NonRetriableError('closed')), 1, 0)).toEqual({
      kind: 'dead-letter',
      reason: 'non-retriable',
    });
    expect(judgeFailure(policy, failed(new CodecError('bad json')), 1, 0)).toEqual({ kind: 'dead-letter', reason: 'decode' });
    expect(judgeFailure({ ...policy, onExhausted: 'stop-partition' }, failed(new Error('x')), 3, 0)).toEqual({
      kind: 'stop-partition',
    });
  });
});
