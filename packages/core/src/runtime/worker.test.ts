import 'reflect-metadata';
import { Container, inject, injectable } from 'inversify';
import { describe, expect, it } from 'vitest';
import { HANDLER_CONTEXT, handles, TRANSACTION } from '../app/decorators.js';
import { defineApp } from '../app/define-app.js';
import type { HandlerContext, Message } from '../app/types.js';
import { json, string } from '../codec/codecs.js';
import { IdleInTransactionError, OffsetOutOfRangeError, OncelyError, StateError, StoreUnavailableError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { MemoryLog } from '../testing/memory-log.js';
import { MemoryStore, type MemoryTx } from '../testing/memory-store.js';
import { until } from '../testing/until.js';
import type { CommitInfo } from './events.js';
import { createWorker, type Worker } from './worker.js';

const fast = {
  logger: silentLogger,
  fetchMaxWaitMs: 20,
  retryInitialDelayMs: 1,
  retryMaxDelayMs: 5,
  heartbeatIntervalMs: 200,
  closeOnStop: false,
} as const;

function fill(log: MemoryLog, topic: string, partitions: number, perPartition: number) {
  for (let p = 0; p < partitions; p++) {
    log.append(
      topic,
      p,
      Array.from({ length: perPartition }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ p, i }) })),
    );
  }
}

/** An app that records every applied record in the store: `applied` = list of "p:i", `count:<id>` per record. */
function recordingApp(topic: string) {
  return defineApp<MemoryTx>({ group: 'g' }).handle({ topic, codec: json<{ p: number; i: number }>() }, (msg, ctx) => {
    ctx.tx.update<string[]>(`applied:${msg.partition}`, (v = []) => [...v, `${msg.value.i}`]);
    ctx.tx.update<number>(`count:${msg.id}`, (v = 0) => v + 1);
  });
}

function appliedOnce(store: MemoryStore, partitions: number, perPartition: number) {
  for (let p = 0; p < partitions; p++) {
    expect(store.data.get(`applied:${p}`)).toEqual(Array.from({ length: perPartition }, (_, i) => `${i}`));
  }
  for (const [k, v] of store.data) if (k.startsWith('count:')) expect(v, k).toBe(1);
}

const positions = (w: Worker<MemoryTx>) =>
  Object.fromEntries(w.progress().map((p) => [`${p.topic}:${p.partition}`, p.nextOffset]));

describe('worker (in-memory log and store)', () => {
  it('applies every record exactly once, in order per partition, in bounded batches', async () => {
    const log = new MemoryLog().createTopic('t', 3);
    fill(log, 't', 3, 40);
    const store = new MemoryStore();
    const commits: CommitInfo[] = [];
    const w = createWorker(recordingApp('t'), {
      ...fast,
      store,
      reader: log,
      batchMaxRecords: 7,
    });
    w.on('commit', (c) => {
      commits.push(c);
    });
    await w.start();
    await until(() => w.progress().every((p) => p.nextOffset === 40n), 'all partitions caught up');
    await w.stop();
    appliedOnce(store, 3, 40);
    expect(Math.max(...commits.map((c) => c.records))).toBeLessThanOrEqual(7);
    expect(w.state).toBe('stopped');
    expect(store.log.every((l) => l.to > l.from)).toBe(true);
  });

  it('moves the position past gaps (control records) so lag reaches 0', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    log.append('t', 0, [{ value: '{"p":0,"i":0}' }]);
    log.appendGap('t', 0, 2);
    log.append('t', 0, [{ value: '{"p":0,"i":1}' }]);
    log.appendGap('t', 0, 1);
    const store = new MemoryStore();
    const w = createWorker(recordingApp('t'), { ...fast, store, reader: log });
    await w.start();
    await until(() => positions(w)['t:0'] === 5n, 'position past the trailing gap');
    await w.stop();
    expect(store.data.get('applied:0')).toEqual(['0', '1']);
    expect((await store.position({ group: 'g', topic: 't', partition: 0 }))?.nextOffset).toBe(5n);
  });

  it('rolls a failing batch back and retries it without moving past the failing record', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    fill(log, 't', 1, 10);
    const store = new MemoryStore();
    let failuresLeft = 3;
    const attempts: number[] = [];
    const app = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: json<{ i: number }>() }, (msg, ctx) => {
      ctx.tx.update<number>('sum', (v = 0) => v + msg.value.i);
      if (msg.value.i === 5 && failuresLeft > 0) {
        failuresLeft--;
        attempts.push(ctx.attempt);
        throw new Error('database said no');
      }
    });
    const w = createWorker(app, { ...fast, store, reader: log });
    await w.start();
    await until(() => positions(w)['t:0'] === 10n, 'caught up');
    await w.stop();
    expect(store.data.get('sum')).toBe(45); // 0+…+9 once: the rolled-back attempts left nothing
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('resumes after a restart at the stored offset: nothing re-applied, nothing skipped', async () => {
    const log = new MemoryLog().createTopic('t', 2);
    fill(log, 't', 2, 20);
    const store = new MemoryStore();
    const w1 = createWorker(recordingApp('t'), { ...fast, store, reader: log, batchMaxRecords: 3 });
    await w1.start();
    await until(() => store.log.length >= 3, 'some commits');
    await w1.stop();
    for (let p = 0; p < 2; p++) {
      log.append(
        't',
        p,
        Array.from({ length: 20 }, (_, j) => ({ value: JSON.stringify({ p, i: 20 + j }) })),
      );
    }
    const w2 = createWorker(recordingApp('t'), { ...fast, store, reader: log, batchMaxRecords: 3 });
    await w2.start();
    await until(() => w2.progress().every((p) => p.nextOffset === 40n), 'caught up');
    await w2.stop();
    appliedOnce(store, 2, 40);
  });

  it('fences a worker whose partition was claimed by another: it commits nothing more and drops it', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    const store = new MemoryStore();
    const fenced: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const appA = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: string() }, async (msg, ctx) => {
      ctx.tx.update<string[]>('writes', (v = []) => [...v, `A:${msg.offset}`]);
      if (msg.offset === 1n) await gate; // hold the transaction open while B claims
    });
    const a = createWorker(appA, {
      ...fast,
      store,
      reader: log,
      workerId: 'A',
      batchMaxRecords: 1,
    });
    a.on('fenced', (f) => {
      fenced.push(`${f.action} by ${f.detectedBy}`);
    });
    await a.start();
    log.append('t', 0, [{ value: 'x' }, { value: 'y' }]);
    await until(() => positions(a)['t:0'] === 1n, 'A applied offset 0');
    const appB = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: string() }, (msg, ctx) => {
      ctx.tx.update<string[]>('writes', (v = []) => [...v, `B:${msg.offset}`]);
    });
    // A live holder is never taken from, except deliberately (force).
    const b = createWorker(appB, { ...fast, store, reader: log, workerId: 'B', force: true });
    await b.start();
    release();
    await until(() => fenced.length === 1, 'A fenced');
    await until(() => positions(b)['t:0'] === 2n, 'B caught up');
    await Promise.all([a.stop(), b.stop()]);
    // The batch held open across the takeover is refused at its commit: its write is gone.
    expect(fenced).toEqual(['dropped by commit']);
    expect(store.data.get('writes')).toEqual(['A:0', 'B:1']);
    expect(a.progress()).toEqual([]);
  });

  it('reports the fence of a batch the store ended for idling when the worker stops it before the retry (a woken zombie)', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    const store = new MemoryStore();
    const fenced: string[] = [];
    let retries = 0;
    // The store ended the batch's transaction (a frozen process woke up past the idle timeout).
    const appA = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: string() }, () => {
      throw new IdleInTransactionError('terminating connection due to idle-in-transaction timeout', 1000);
    });
    const a = createWorker(appA, {
      ...fast,
      store,
      reader: log,
      workerId: 'A',
      retryInitialDelayMs: 400,
      retryMaxDelayMs: 400,
    });
    a.on('fenced', (f) => {
      fenced.push(`${f.action} by ${f.detectedBy}`);
    });
    a.on('retry', () => {
      retries++;
    });
    await a.start();
    log.append('t', 0, [{ value: 'x' }]);
    await until(() => retries === 1, 'A retrying the idle-ended batch');
    // Meanwhile another worker took the partition; A is then stopped (its hand-off) before it retries.
    const b = createWorker(
      defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: string() }, () => {}),
      { ...fast, store, reader: log, workerId: 'B', force: true },
    );
    await b.start();
    await until(() => positions(b)['t:0'] === 1n, 'B applied the record');
    await a.stop();
    await b.stop();
    expect(fenced).toEqual(['dropped by commit']);
    expect(retries).toBe(1);
  });

  it('reports the fence of a batch that lost its connection when the worker stops it before the retry, after the renewal found the lease lost', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    const store = new MemoryStore();
    const fenced: string[] = [];
    const released: string[] = [];
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (m) => void warnings.push(m), child: () => logger };
    let tries = 0;
    // The batch's connection died (a woken zombie whose session PostgreSQL ended): a store outage
    // to the runner, retried after the back-off.
    const appA = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: string() }, () => {
      tries++;
      throw new StoreUnavailableError('ROLLBACK - Connection terminated unexpectedly');
    });
    const a = createWorker(appA, {
      ...fast,
      logger,
      store,
      reader: log,
      workerId: 'A',
      // Long enough that B's claim and A's renewal come first, on a slow machine too.
      retryInitialDelayMs: 4000,
      retryMaxDelayMs: 4000,
    });
    a.on('fenced', (f) => {
      fenced.push(`${f.action} by ${f.detectedBy}`);
    });
    a.on('release', (r) => {
      released.push(`${r.partition}@${r.epoch}`);
    });
    await a.start();
    log.append('t', 0, [{ value: 'x' }]);
    await until(() => tries === 1, 'A failing the batch');
    const b = createWorker(
      defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: string() }, () => {}),
      { ...fast, store, reader: log, workerId: 'B', force: true },
    );
    await b.start();
    await until(() => positions(b)['t:0'] === 1n, 'B applied the record');
    await until(() => warnings.some((w) => w.startsWith('lease lost')), "A's renewal finding the lease lost");
    // A stops while its batch waits for the retry: it never reads the renewal's request to re-check.
    await a.stop();
    await b.stop();
    expect(tries).toBe(1);
    expect(fenced).toEqual(['dropped by renewal']);
    expect(released).toEqual([]); // not a release of a partition B holds
  });

  it('stops a runner waiting out a back-off at once, not after it, and leaves the batch for the next run', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    const store = new MemoryStore();
    let tries = 0;
    const app = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: string() }, () => {
      tries++;
      throw new StoreUnavailableError('connection lost');
    });
    // A back-off far longer than the test may run: stop() has to end it.
    const w = createWorker(app, { ...fast, store, reader: log, retryInitialDelayMs: 600_000, retryMaxDelayMs: 600_000 });
    await w.start();
    log.append('t', 0, [{ value: 'x' }]);
    await until(() => tries === 1, 'the batch failing once');
    const stopped = await Promise.race([
      w.stop().then(() => 'stopped'),
      new Promise((r) => setTimeout(() => r('still in its back-off'), 20_000)),
    ]);
    expect(stopped).toBe('stopped');
    expect(tries).toBe(1);
    // Nothing committed: the next run applies it.
    expect((await store.position({ group: 'g', topic: 't', partition: 0 }))?.nextOffset ?? 0n).toBe(0n);
  }, 30_000);

  it('a lazy codec decodes a value once, when first read, and a message with an undecodable value still logs', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    log.append('t', 0, [{ value: '{"i":0}' }, { value: '{"i":1}' }, { value: 'not json' }]);
    const store = new MemoryStore();
    const inner = json<{ i: number }>({ lazy: true });
    const decoded: string[] = [];
    const codec: typeof inner = {
      ...inner,
      decode(value, record) {
        decoded.push(`${record.offset}`);
        return inner.decode(value, record);
      },
    };
    const logged: string[] = [];
    const app = defineApp<MemoryTx>({ group: 'g' }).handleBatch({ topic: 't', codec }, (batch, ctx) => {
      logged.push(JSON.stringify(batch.messages));
      // The first record's value read twice, the second never.
      ctx.tx.update('first', () => batch.messages[0]!.value.i + batch.messages[0]!.value.i);
    });
    const w = createWorker(app, { ...fast, store, reader: log });
    await w.start();
    await until(() => positions(w)['t:0'] === 3n, 'past every record');
    await w.stop();
    expect(store.data.get('first')).toBe(0);
    // Logging reads every value: the bad one shows as its error instead of throwing.
    expect(logged[0]).toContain('"value":{"i":1}');
    expect(logged[0]).toMatch(/"value":\{"undecodable":"json: value at offset 2 is not valid JSON/);
    expect(decoded).toEqual(['0', '1', '2']);
    expect(w.progress()[0]!.deadLetteredRecords).toBe(0);
  });

  it('re-claims after an operator rewind and re-applies from there, marking replays', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    fill(log, 't', 1, 6);
    const store = new MemoryStore();
    const seen: Array<[string, boolean]> = [];
    const app = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: json<{ i: number }>() }, (msg, ctx) => {
      seen.push([`${msg.offset}`, ctx.isReplay]);
    });
    const fenced: string[] = [];
    const w = createWorker(app, {
      ...fast,
      store,
      reader: log,
      leaseMs: 1000,
    });
    w.on('fenced', (f) => {
      fenced.push(`${f.action} by ${f.detectedBy}`);
    });
    await w.start();
    await until(() => positions(w)['t:0'] === 6n, 'caught up');
    await store.rewind({ group: 'g', topic: 't', partition: 0 }, 3n);
    await until(() => seen.length === 9, 're-applied 3..5');
    await w.stop();
    // Caught up, no batch in flight: the lease renewal finds the rewind.
    expect(fenced).toEqual(['reclaimed by renewal']);
    expect(seen.slice(6)).toEqual([
      ['3', true],
      ['4', true],
      ['5', true],
    ]);
    expect(seen.slice(0, 6).every(([, replay]) => !replay)).toBe(true);
  });

  it('fails loudly when the stored offset fell out of the log (default policy)', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    fill(log, 't', 1, 10);
    log.deleteBefore('t', 0, 5n);
    const store = new MemoryStore();
    await store.release(
      await store.claim({ group: 'g', topic: 't', partition: 0, workerId: 'old', initialOffset: 2n, leaseMs: 1000 }),
    );
    const w = createWorker(recordingApp('t'), { ...fast, store, reader: log });
    await w.start();
    await expect(w.done).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect(w.state).toBe('failed');
    expect(w.error?.message).toMatch(/Offset 2 of t\/0 is out of range \(the log now spans 5\.\.10\)/);
  });

  it("moves to earliest with a warning and a count under offsetOutOfRange: 'earliest'", async () => {
    const log = new MemoryLog().createTopic('t', 1);
    fill(log, 't', 1, 10);
    log.deleteBefore('t', 0, 5n);
    const store = new MemoryStore();
    await store.release(
      await store.claim({ group: 'g', topic: 't', partition: 0, workerId: 'old', initialOffset: 2n, leaseMs: 1000 }),
    );
    const moves: Array<[bigint, bigint]> = [];
    const app = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: json<{ i: number }>() }, (msg, ctx) => {
      ctx.tx.update<number[]>('seen', (v = []) => [...v, msg.value.i]);
    });
    const w = createWorker(app, {
      ...fast,
      store,
      reader: log,
      offsetOutOfRange: 'earliest',
    });
    w.on('out-of-range', (m) => {
      moves.push([m.from, m.to]);
    });
    await w.start();
    await until(() => positions(w)['t:0'] === 10n, 'caught up');
    await w.stop();
    expect(moves).toEqual([[2n, 5n]]);
    expect(store.data.get('seen')).toEqual([5, 6, 7, 8, 9]);
  });

  it('resolves class handlers per batch with the transaction injected into their dependencies', async () => {
    const LEDGER = Symbol('Ledger');
    @injectable()
    class Ledger {
      constructor(@inject(TRANSACTION) private readonly tx: MemoryTx) {}
      add(account: string, cents: number) {
        this.tx.update<number>(`balance:${account}`, (v = 0) => v + cents);
      }
    }
    @handles('payments', { codec: json<{ account: string; cents: number }>() })
    @injectable()
    class PaymentHandler {
      constructor(
        @inject(LEDGER) private readonly ledger: Ledger,
        @inject(HANDLER_CONTEXT) private readonly ctx: HandlerContext<MemoryTx>,
      ) {}
      handle(msg: Message<{ account: string; cents: number }>) {
        expect(this.ctx.group).toBe('bank');
        this.ledger.add(msg.value.account, msg.value.cents);
      }
    }
    const container = new Container();
    container.bind(LEDGER).to(Ledger);
    const log = new MemoryLog().createTopic('payments', 2);
    log.append('payments', 0, [{ value: '{"account":"a","cents":5}' }, { value: '{"account":"b","cents":7}' }]);
    log.append('payments', 1, [{ value: '{"account":"a","cents":-2}' }]);
    const store = new MemoryStore();
    const app = defineApp<MemoryTx>({ group: 'bank', container }).register(PaymentHandler);
    const w = createWorker(app, { ...fast, store, reader: log });
    await w.start();
    await until(() => positions(w)['payments:0'] === 2n && positions(w)['payments:1'] === 1n, 'caught up');
    await w.stop();
    expect(store.data.get('balance:a')).toBe(3);
    expect(store.data.get('balance:b')).toBe(7);
  });

  it('resolves class handlers at start: a missing binding fails start() naming the class and the binding', async () => {
    const REPOSITORY = Symbol.for('test.repository');
    @handles('orders', { codec: json() })
    @injectable()
    class OrderHandler {
      constructor(@inject(REPOSITORY) private readonly repo: { save(): void }) {}
      handle() {
        this.repo.save();
      }
    }
    const log = new MemoryLog().createTopic('orders', 1);
    log.append('orders', 0, [{ value: '{}' }]);
    const store = new MemoryStore();
    const app = defineApp<MemoryTx>({ group: 'shop', container: new Container() }).register(OrderHandler);
    const w = createWorker(app, { ...fast, store, reader: log });
    const error = await w.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(OncelyError.is(error, 'CONFIG_INVALID'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/Handler class OrderHandler of topic 'orders' cannot be resolved/);
    expect((error as Error).message).toMatch(/test\.repository/);
    expect(w.state).toBe('failed');
    expect(w.progress()).toEqual([]);
  });

  it('resolves at start a class whose constructor uses the transaction (the check ends there) and applies with the real one', async () => {
    @handles('t', { codec: json() })
    @injectable()
    class Eager {
      constructor(@inject(TRANSACTION) tx: MemoryTx) {
        tx.update<number>('constructed', (v = 0) => v + 1);
      }
      handle(_m: Message<unknown>, ctx: HandlerContext<MemoryTx>) {
        ctx.tx.update<number>('handled', (v = 0) => v + 1);
      }
    }
    const log = new MemoryLog().createTopic('t', 1);
    log.append('t', 0, [{ value: '{}' }]);
    const store = new MemoryStore();
    const w = createWorker(defineApp<MemoryTx>({ group: 'g', container: new Container() }).register(Eager), {
      ...fast,
      store,
      reader: log,
    });
    await w.start();
    await until(() => positions(w)['t:0'] === 1n, 'applied');
    await w.stop();
    expect(store.data.get('handled')).toBe(1);
    expect(store.data.get('constructed')).toBe(1);
  });

  it('unregisters on a failed start-up only when a heartbeat may have registered it: a store that refused or never got one is not asked again', async () => {
    class CountingStore extends MemoryStore {
      leaves = 0;
      override async leave(group: string, workerId: string): Promise<void> {
        this.leaves++;
        return super.leave(group, workerId);
      }
    }
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (msg) => warnings.push(msg), child: () => logger };
    const log = new MemoryLog().createTopic('t', 1);

    // prepare (the store's migrate) fails: nothing was registered, so nothing is unregistered.
    const unprepared = new CountingStore();
    const failed = createWorker(recordingApp('t'), {
      ...fast,
      logger,
      store: unprepared,
      reader: log,
      prepare: () => Promise.reject(new OncelyError('STORE_FAILED', 'no such database', { retriable: false })),
    });
    await expect(failed.start()).rejects.toThrow(/no such database/);
    expect(failed.state).toBe('failed');
    expect(unprepared.leaves).toBe(0);
    expect(warnings).toEqual([]);

    // The first heartbeat was refused (a schema not migrated): it wrote no row, so none is deleted.
    class UnmigratedStore extends CountingStore {
      override async heartbeat(): Promise<never> {
        throw new OncelyError('STORE_FAILED', 'relation "oncely.workers" does not exist', { retriable: false });
      }
    }
    const unmigrated = new UnmigratedStore();
    const refused = createWorker(recordingApp('t'), { ...fast, logger, store: unmigrated, reader: log });
    await expect(refused.start()).rejects.toThrow(/oncely\.workers/);
    expect(unmigrated.leaves).toBe(0);
    expect(warnings).toEqual([]);

    // The first round's heartbeat registered the worker before the topic turned out missing: it leaves.
    const registered = new CountingStore();
    const missingTopic = createWorker(recordingApp('missing'), { ...fast, logger, store: registered, reader: log });
    await expect(missingTopic.start()).rejects.toThrow();
    expect(registered.leaves).toBe(1);
  });

  it('has an explicit, idempotent lifecycle', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    const store = new MemoryStore();
    const states: string[] = [];
    const w = createWorker(recordingApp('t'), {
      ...fast,
      store,
      reader: log,
      closeOnStop: true,
    });
    w.on('state', (s) => {
      states.push(s);
    });
    const s1 = w.start();
    expect(w.start()).toBe(s1);
    const stop1 = w.stop();
    expect(w.stop()).toBe(stop1);
    await s1;
    await stop1;
    expect(states).toEqual(['starting', 'running', 'draining', 'stopped']);
    expect(store.closed).toBe(true);
    await expect(w.start()).rejects.toThrow(StateError);
    await expect(w.start()).rejects.toThrow(/state 'stopped'/);
  });

  it('takes only its static share of partitions', async () => {
    const log = new MemoryLog().createTopic('t', 4);
    const store = new MemoryStore();
    const w = createWorker(recordingApp('t'), { ...fast, store, reader: log, split: '2/2' });
    await w.start();
    expect(w.progress().map((p) => p.partition)).toEqual([1, 3]);
    await w.stop();
    const w2 = createWorker(recordingApp('t'), { ...fast, store, reader: log, partitions: 't:0,2' });
    await w2.start();
    expect(w2.progress().map((p) => p.partition)).toEqual([0, 2]);
    await w2.stop();
  });

  it('rejects bad options with the option name and the fix', () => {
    const log = new MemoryLog();
    const store = new MemoryStore();
    const app = recordingApp('t');
    expect(() => createWorker(app, { ...fast, store, reader: log, batchMaxRecords: 0 })).toThrow(
      /batchMaxRecords must be an integer from 1/,
    );
    // biome-ignore lint/suspicious/noExplicitAny: a JavaScript caller's mistake
    expect(() => createWorker(app, { ...fast, store, reader: log, offsetOutOfRange: 'skip' as any })).toThrow(
      /offsetOutOfRange must be/,
    );
    // biome-ignore lint/suspicious/noExplicitAny: a JavaScript caller's mistake
    expect(() => createWorker(app, { ...fast, reader: log } as any)).toThrow(/store is required/);
    expect(() => createWorker(app, { ...fast, store, reader: log, split: '3/2' })).toThrow(/Bad worker split/);
  });

  it("stops by itself at the high watermarks taken at start with until: 'caught-up'", async () => {
    const log = new MemoryLog().createTopic('t', 2);
    fill(log, 't', 2, 10);
    const store = new MemoryStore();
    const w = createWorker(recordingApp('t'), { ...fast, store, reader: log, until: 'caught-up', batchMaxRecords: 4 });
    await w.start();
    // Written after the start: a bounded run leaves them for the next run.
    for (let p = 0; p < 2; p++) log.append('t', p, [{ value: JSON.stringify({ p, i: 10 }) }]);
    await w.done;
    expect(w.state).toBe('stopped');
    expect(w.progress().map((p) => [p.nextOffset, p.target, p.caughtUp])).toEqual([
      [10n, 10n, true],
      [10n, 10n, true],
    ]);
    appliedOnce(store, 2, 10);
  });
});
