import { describe, expect, it } from 'vitest';
import { defineApp } from '../app/define-app.js';
import { string } from '../codec/codecs.js';
import { OncelyError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { createWorker, type Worker } from '../runtime/worker.js';
import { MemoryLog } from '../testing/memory-log.js';
import { MemoryStore, type MemoryTx } from '../testing/memory-store.js';
import { until } from '../testing/until.js';

/** A logger that keeps its lines, to check what an operator would read. */
function recordingLogger(lines: string[] = []): Logger & { lines: string[] } {
  const make = (): Logger => ({
    debug: (m) => lines.push(`debug ${m}`),
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
    child: () => make(),
  });
  return Object.assign(make(), { lines });
}

const app = (topic = 't') =>
  defineApp<MemoryTx>({ group: 'g' }).handle({ topic, codec: string() }, (msg, ctx) => {
    ctx.tx.update<number>(`count:${msg.partition}:${msg.offset}`, (v = 0) => v + 1);
  });

const quick = {
  fetchMaxWaitMs: 20,
  retryInitialDelayMs: 1,
  retryMaxDelayMs: 5,
  heartbeatIntervalMs: 100,
  leaseMs: 1_000,
  sessionTimeoutMs: 1_000,
  closeOnStop: false,
  logger: silentLogger,
} as const;

const owned = (w: Worker<MemoryTx>) =>
  w
    .progress()
    .map((p) => `${p.topic}:${p.partition}`)
    .sort();

async function owners(store: MemoryStore, partitions: number) {
  const out: Array<string | null> = [];
  for (let p = 0; p < partitions; p++) out.push((await store.position({ group: 'g', topic: 't', partition: p }))?.owner ?? null);
  return out;
}

describe('static membership keeps partitions on the rule: only free, released or expired ones are claimed', () => {
  const statik = { ...quick, membership: 'static' as const };
  it('a worker whose list overlaps a live one waits, logging once, and takes over when the holder stops', async () => {
    const log = new MemoryLog().createTopic('t', 2);
    const store = new MemoryStore();
    const a = createWorker(app(), { ...statik, store, reader: log, workerId: 'A', logger: recordingLogger() });
    await a.start();
    const lines: string[] = [];
    const c = createWorker(app(), { ...statik, store, reader: log, workerId: 'C', logger: recordingLogger(lines) });
    await c.start();
    expect(owned(c)).toEqual([]);
    // Several rounds pass: C keeps waiting and logs each wait once per holder.
    await new Promise((r) => setTimeout(r, 500));
    expect(await owners(store, 2)).toEqual(['A', 'A']);
    expect(lines.filter((l) => l.startsWith('warn partition held by another live worker'))).toHaveLength(2);
    expect(c.membership().waiting).toEqual([
      { partition: 't:0', owner: 'A' },
      { partition: 't:1', owner: 'A' },
    ]);
    await a.stop();
    await until(() => owned(c).length === 2, 'C took both partitions once A released them');
    expect(lines.filter((l) => l.startsWith('info claimed the partition it waited for'))).toHaveLength(2);
    await c.stop();
  });

  it("fails the start with a clear message under onHeld: 'fail'", async () => {
    const log = new MemoryLog().createTopic('t', 2);
    const store = new MemoryStore();
    const a = createWorker(app(), { ...statik, store, reader: log, workerId: 'A', partitions: 't:1' });
    await a.start();
    const c = createWorker(app(), { ...statik, store, reader: log, workerId: 'C', onHeld: 'fail' });
    const failed = await c.start().catch((e: unknown) => e);
    expect(OncelyError.is(failed, 'CONFIG_INVALID')).toBe(true);
    expect((failed as Error).message).toMatch(/t\/1 is held by worker A .*overlaps a live worker's.*--force/);
    expect(c.state).toBe('failed');
    // What C had claimed (t:0) was released when its start failed.
    expect(await owners(store, 2)).toEqual([null, 'A']);
    await a.stop();
  });

  it('after a forced takeover the fenced workers re-claim once the intruder stops: no partition is left without an owner', async () => {
    const log = new MemoryLog().createTopic('t', 4);
    for (let p = 0; p < 4; p++) log.append('t', p, [{ value: 'a' }]);
    const store = new MemoryStore();
    const a = createWorker(app(), { ...statik, store, reader: log, workerId: 'A', split: '1/2' });
    const b = createWorker(app(), { ...statik, store, reader: log, workerId: 'B', split: '2/2' });
    await Promise.all([a.start(), b.start()]);
    await until(async () => (await owners(store, 4)).join() === 'A,B,A,B', 'A and B hold their halves');
    const c = createWorker(app(), { ...statik, store, reader: log, workerId: 'C', force: true });
    await c.start();
    expect(owned(c)).toEqual(['t:0', 't:1', 't:2', 't:3']);
    for (let p = 0; p < 4; p++) log.append('t', p, [{ value: 'b' }]);
    await until(() => owned(a).length === 0 && owned(b).length === 0, 'A and B fenced by the takeover');
    await c.stop();
    await until(async () => (await owners(store, 4)).join() === 'A,B,A,B', 'A and B took their halves back');
    for (let p = 0; p < 4; p++) log.append('t', p, [{ value: 'c' }]);
    await until(() => [...a.progress(), ...b.progress()].every((p) => p.nextOffset === 3n), 'all applied');
    await Promise.all([a.stop(), b.stop()]);
    for (let p = 0; p < 4; p++) for (let o = 0; o < 3; o++) expect(store.data.get(`count:${p}:${o}`), `${p}:${o}`).toBe(1);
  });

  it('takes back the partitions of a holder that died once its lease has expired', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    log.append('t', 0, [{ value: 'a' }]);
    const store = new MemoryStore();
    // A holder that never renews nor releases: a process that was SIGKILLed.
    await store.claim({ group: 'g', topic: 't', partition: 0, workerId: 'dead', initialOffset: 0n, leaseMs: 1_000 });
    const lines: string[] = [];
    const w = createWorker(app(), { ...statik, store, reader: log, workerId: 'W', logger: recordingLogger(lines) });
    await w.start();
    expect(owned(w)).toEqual([]);
    await until(() => owned(w).length === 1, 'claimed after the lease expired', 5_000);
    expect(lines).toContain('info took the partition over from a worker whose lease had expired');
    await until(() => w.progress()[0]?.nextOffset === 1n, 'applied');
    await w.stop();
  });

  it('picks up partitions added to a topic without a restart', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    const store = new MemoryStore();
    const w = createWorker(app(), { ...statik, store, reader: log, partitionRefreshMs: 100 });
    await w.start();
    expect(owned(w)).toEqual(['t:0']);
    log.addPartitions('t', 2);
    log.append('t', 2, [{ value: 'x' }]);
    await until(() => owned(w).length === 3, 'new partitions claimed');
    await until(() => w.progress().find((p) => p.partition === 2)?.nextOffset === 1n, 'new partition applied');
    await w.stop();
  });

  it('renews every held lease in one statement per round', async () => {
    const log = new MemoryLog().createTopic('t', 5);
    const store = new MemoryStore();
    const renewals: number[] = [];
    const renew = store.renew.bind(store);
    store.renew = async (claims, leaseMs) => {
      renewals.push(claims.length);
      return renew(claims, leaseMs);
    };
    const w = createWorker(app(), { ...statik, store, reader: log });
    await w.start();
    await until(() => renewals.length >= 3, 'three rounds');
    await w.stop();
    expect(renewals.slice(0, 3)).toEqual([5, 5, 5]);
  });
});

describe('elastic membership shares the partitions among the live workers', () => {
  const elastic = { ...quick, membership: 'elastic' as const };
  const everyPartitionOwnedOnce = async (store: MemoryStore, workers: Array<Worker<MemoryTx>>, partitions: number) => {
    const held = workers.flatMap(owned);
    const ownersNow = await owners(store, partitions);
    return new Set(held).size === partitions && held.length === partitions && ownersNow.every((o) => o !== null);
  };

  it('re-balances on join, clean stop and death: every partition owned by exactly one live worker', async () => {
    const log = new MemoryLog().createTopic('t', 6);
    const store = new MemoryStore();
    const a = createWorker(app(), { ...elastic, store, reader: log, workerId: 'A' });
    await a.start();
    expect(owned(a)).toHaveLength(6);
    const b = createWorker(app(), { ...elastic, store, reader: log, workerId: 'B' });
    const c = createWorker(app(), { ...elastic, store, reader: log, workerId: 'C' });
    await Promise.all([b.start(), c.start()]);
    await until(() => [a, b, c].every((w) => owned(w).length === 2), 'two partitions each', 5_000);
    expect(await everyPartitionOwnedOnce(store, [a, b, c], 6)).toBe(true);
    expect(a.membership().liveWorkers).toEqual(['A', 'B', 'C']);
    // A clean stop unregisters: the others take its partitions without waiting for a lease.
    await b.stop();
    await until(() => owned(a).length + owned(c).length === 6, 'A and C took B’s partitions', 5_000);
    expect(await everyPartitionOwnedOnce(store, [a, c], 6)).toBe(true);
    for (let p = 0; p < 6; p++) log.append('t', p, [{ value: 'x' }]);
    await until(() => [...a.progress(), ...c.progress()].every((p) => p.nextOffset === 1n), 'all applied', 5_000);
    await Promise.all([a.stop(), c.stop()]);
    for (let p = 0; p < 6; p++) expect(store.data.get(`count:${p}:0`)).toBe(1);
  });

  it('leaves a dead worker out after the session timeout and claims its partitions when their leases expire', async () => {
    const log = new MemoryLog().createTopic('t', 4);
    const store = new MemoryStore();
    // A worker that registered, claimed two partitions and died (no more heartbeats or renewals).
    await store.heartbeat(
      { group: 'g', workerId: 'dead', host: 'h', pid: 1, membership: 'elastic', target: 2, held: 2, maxPartitions: null },
      1_000,
    );
    for (const partition of [0, 1]) {
      await store.claim({ group: 'g', topic: 't', partition, workerId: 'dead', initialOffset: 0n, leaseMs: 1_000 });
    }
    const w = createWorker(app(), { ...elastic, store, reader: log, workerId: 'W' });
    await w.start();
    expect(w.membership().liveWorkers).toEqual(['W', 'dead']);
    expect(owned(w).length).toBeLessThan(4);
    await until(() => owned(w).length === 4, 'W holds all four', 5_000);
    expect(w.membership().liveWorkers).toEqual(['W']);
    await w.stop();
  });

  it('stops and releases the partitions of a topic that disappears, with one clear line; the other topic goes on', async () => {
    const log = new MemoryLog().createTopic('a', 2).createTopic('b', 2);
    const store = new MemoryStore();
    let gone = false;
    // The broker's answer once topic b is deleted; the rest of the reader is the log itself.
    const reader = new Proxy(log, {
      get(target, key) {
        if (key === 'partitions') {
          return async (topic: string) => {
            if (gone && topic === 'b') throw new OncelyError('TOPIC_NOT_FOUND', 'Topic "b" does not exist');
            return target.partitions(topic);
          };
        }
        const v = Reflect.get(target, key, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const two = defineApp<MemoryTx>({ group: 'g' })
      .handle({ topic: 'a', codec: string() }, (msg, ctx) => {
        ctx.tx.update<number>(`count:a:${msg.partition}:${msg.offset}`, (v = 0) => v + 1);
      })
      .handle({ topic: 'b', codec: string() }, () => {});
    const lines: string[] = [];
    const w = createWorker(two, {
      ...elastic,
      store,
      reader,
      workerId: 'W',
      partitionRefreshMs: 100,
      logger: recordingLogger(lines),
    });
    await w.start();
    expect(owned(w)).toEqual(['a:0', 'a:1', 'b:0', 'b:1']);
    gone = true;
    await until(() => owned(w).join() === 'a:0,a:1', "b's runners stopped", 5_000);
    await until(async () => (await store.position({ group: 'g', topic: 'b', partition: 1 }))?.owner === null, 'released');
    expect((await store.position({ group: 'g', topic: 'b', partition: 0 }))?.owner).toBeNull();
    // Several refreshes later the line is still there once.
    await new Promise((r) => setTimeout(r, 400));
    expect(lines.filter((l) => l.includes('topic b no longer exists'))).toEqual([
      'error topic b no longer exists: its partitions are stopped and released',
    ]);
    log.append('a', 1, [{ value: 'x' }]);
    await until(() => w.progress().find((p) => p.topic === 'a' && p.partition === 1)?.nextOffset === 1n, 'a applied');
    expect(w.state).toBe('running');
    await w.stop();
    expect(store.data.get('count:a:1:0')).toBe(1);
  });

  it('respects maxPartitions: a capped worker takes no more, the others carry the rest', async () => {
    const log = new MemoryLog().createTopic('t', 6);
    const store = new MemoryStore();
    const a = createWorker(app(), { ...elastic, store, reader: log, workerId: 'A', maxPartitions: 1 });
    const b = createWorker(app(), { ...elastic, store, reader: log, workerId: 'B' });
    await Promise.all([a.start(), b.start()]);
    await until(() => owned(a).length === 1 && owned(b).length === 5, 'A one, B five', 5_000);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('shares in proportion to the weights: weights 1 and 3 over 8 partitions end with 2 and 6', async () => {
    const log = new MemoryLog().createTopic('t', 8);
    const store = new MemoryStore();
    const a = createWorker(app(), { ...elastic, store, reader: log, workerId: 'A', weight: 1 });
    const b = createWorker(app(), { ...elastic, store, reader: log, workerId: 'B', weight: 3 });
    await Promise.all([a.start(), b.start()]);
    await until(() => owned(a).length === 2 && owned(b).length === 6, 'A two, B six', 5_000);
    expect(await everyPartitionOwnedOnce(store, [a, b], 8)).toBe(true);
    expect(store.workers().map((w) => [w.workerId, w.weight])).toEqual([
      ['A', 1],
      ['B', 3],
    ]);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('rejects options that belong to static membership and timeouts that do not fit together', () => {
    const store = new MemoryStore();
    const log = new MemoryLog();
    expect(() => createWorker(app(), { ...elastic, store, reader: log, split: '1/2' })).toThrow(
      /split belongs to static membership/,
    );
    expect(() => createWorker(app(), { ...quick, store, reader: log, leaseMs: 1_000, heartbeatIntervalMs: 500 })).toThrow(
      /heartbeatIntervalMs \(500\) must be at most a third of leaseMs \(1000\)/,
    );
    expect(() =>
      createWorker(app(), {
        ...elastic,
        store: { ...store, claim: store.claim, runBatch: store.runBatch, heartbeat: undefined } as never,
        reader: log,
      }),
    ).toThrow(/needs a store that keeps heartbeats/);
  });
});
