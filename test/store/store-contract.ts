/**
 * The contract every TransactionalStore must pass, whatever holds its data: claims and epochs,
 * the fenced compare-and-set commit, atomic work, lease renewal and release, positions and crash
 * counting. Run it with `storeContract(name, makeStore)` (MemoryStore in a unit test, PostgresStore
 * against a real database).
 */
import { type ClaimInput, OncelyError, type TransactionalStore } from '@oncely/core';
import { afterAll, describe, expect, it } from 'vitest';

/** A store under test, with a way to write application data through its transaction and read it back. */
export interface StoreUnderTest<Tx> {
  store: TransactionalStore<Tx>;
  /** Writes `value` under `key` through the batch's transaction. */
  write(tx: Tx, key: string, value: string): Promise<void>;
  /** The committed value of `key`, or undefined. */
  read(key: string): Promise<string | undefined>;
}

let n = 0;
const input = (overrides: Partial<ClaimInput> = {}): ClaimInput => ({
  group: 'contract',
  topic: `topic-${process.pid}-${Date.now()}-${n++}`,
  partition: 0,
  workerId: 'worker-a',
  initialOffset: 5n,
  leaseMs: 30_000,
  ...overrides,
});

export function storeContract<Tx>(name: string, makeStore: () => Promise<StoreUnderTest<Tx>>): void {
  describe(`TransactionalStore contract: ${name}`, () => {
    const made: Array<TransactionalStore<Tx>> = [];
    const fresh = async () => {
      const s = await makeStore();
      made.push(s.store);
      return s;
    };
    afterAll(async () => {
      for (const s of made.splice(0)) await s.close();
    });

    it('a first claim starts at initialOffset; a second claim keeps the position and bumps the epoch', async () => {
      const { store } = await fresh();
      const a = await store.claim(input());
      expect(a.nextOffset).toBe(5n);
      expect(a.highestCommitted).toBeNull();
      expect(a.takenFrom).toBeUndefined();
      // The same worker claims again (a restart under its id, a rewind): allowed, and fences its old claim.
      const again = await store.claim(input({ topic: a.topic, initialOffset: 0n }));
      expect(again.nextOffset).toBe(5n);
      expect(again.epoch).toBeGreaterThan(a.epoch);
      await store.release(again);
      const b = await store.claim(input({ topic: a.topic, workerId: 'worker-b', initialOffset: 0n }));
      expect(b.nextOffset).toBe(5n);
      expect(b.epoch).toBeGreaterThan(again.epoch);
      expect(b.takenFrom).toBeUndefined(); // released: nobody was taken from
    });

    it('a claim respects a live lease: held unless forced; an expired lease is taken', async () => {
      const { store } = await fresh();
      const a = await store.claim(input({ leaseMs: 1_000 }));
      const held = await store.claim(input({ topic: a.topic, workerId: 'worker-b' })).catch((e: unknown) => e);
      expect(OncelyError.is(held, 'PARTITION_HELD')).toBe(true);
      expect(held).toMatchObject({ owner: 'worker-a', topic: a.topic, partition: 0 });
      expect((held as { leaseLeftMs: number }).leaseLeftMs).toBeGreaterThan(0);
      expect((await store.position?.(a))?.owner).toBe('worker-a');
      const forced = await store.claim(input({ topic: a.topic, workerId: 'worker-b', force: true }));
      expect(forced.takenFrom).toEqual({ owner: 'worker-a', leaseLive: true });
      expect(forced.epoch).toBeGreaterThan(a.epoch);
      expect(await store.renew([a], 1_000)).toEqual([a]);
      // worker-b stops renewing: once its lease has expired by the store's clock, worker-c takes it.
      await store.renew([forced], 1_000);
      await new Promise((r) => setTimeout(r, 1_200));
      const c = await store.claim(input({ topic: a.topic, workerId: 'worker-c' }));
      expect(c.takenFrom).toEqual({ owner: 'worker-b', leaseLive: false });
    });

    it('a heartbeat returns the live workers, each with what it owns under a live lease, from one view', async () => {
      const { store } = await fresh();
      expect(typeof store.heartbeat).toBe('function');
      const group = `hb-${process.pid}-${Date.now()}-${n++}`;
      const topic = `topic-hb-${n++}`;
      const beat = (workerId: string) => ({
        group,
        workerId,
        host: 'h',
        pid: 1,
        membership: 'elastic' as const,
        target: null,
        held: 0,
        maxPartitions: null,
      });
      const claim = (partition: number, workerId: string, leaseMs = 30_000) =>
        store.claim(input({ group, topic, partition, workerId, leaseMs }));
      await store.heartbeat!(beat('w-a'), 10_000);
      await store.heartbeat!(beat('w-b'), 10_000);
      const a2 = await claim(2, 'w-a');
      await claim(0, 'w-a');
      await claim(1, 'w-b');
      const released = await claim(3, 'w-b');
      await store.release(released);
      await claim(4, 'w-b', 1_000); // expires below
      await claim(5, 'w-dead'); // a live lease, but its worker has no live heartbeat
      await store.claim(input({ group: `${group}-other`, topic, partition: 6, workerId: 'w-a' })); // another group
      const view = await store.heartbeat!(beat('w-a'), 10_000);
      expect(view.map((w) => [w.workerId, w.owned])).toEqual([
        [
          'w-a',
          [
            { topic, partition: 0 },
            { topic, partition: 2 },
          ],
        ],
        [
          'w-b',
          [
            { topic, partition: 1 },
            { topic, partition: 4 },
          ],
        ],
      ]);
      // An expired lease is not owned any more; a renewed one is.
      await store.renew([a2], 1_000);
      await new Promise((r) => setTimeout(r, 1_200));
      const later = await store.heartbeat!(beat('w-b'), 10_000);
      expect(later.map((w) => [w.workerId, w.owned.map((tp) => tp.partition)])).toEqual([
        ['w-a', [0]],
        ['w-b', [1]],
      ]);
    });

    it('of two concurrent claims of a free partition exactly one succeeds', async () => {
      const { store } = await fresh();
      for (let round = 0; round < 5; round++) {
        const topic = input().topic;
        const results = await Promise.allSettled(
          ['worker-a', 'worker-b', 'worker-c'].map((workerId) => store.claim(input({ topic, workerId }))),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(OncelyError.is(r.reason, 'PARTITION_HELD')).toBe(true);
        expect((await store.position?.({ group: 'contract', topic, partition: 0 }))?.epoch).toBe(1n);
      }
    });

    it('runBatch commits the work and the new position together; a stale claim or position is fenced and writes nothing', async () => {
      const { store, write, read } = await fresh();
      const a = await store.claim(input());
      const key = `k-${a.topic}`;
      await store.runBatch(a, { fetchedFrom: 5n, nextOffset: 8n, recordCount: 3 }, (tx) => write(tx, key, 'first'));
      expect(await read(key)).toBe('first');
      expect((await store.position?.(a))?.nextOffset).toBe(8n);
      expect((await store.position?.(a))?.highestCommitted).toBe(8n);
      // The position moved: a batch fetched from 5 again is fenced.
      const again = store.runBatch(a, { fetchedFrom: 5n, nextOffset: 8n, recordCount: 3 }, (tx) => write(tx, key, 'twice'));
      await expect(again).rejects.toSatisfy((e) => OncelyError.is(e, 'FENCED'));
      // Another worker took it over: the old claim is fenced, even at the right position.
      await store.claim(input({ topic: a.topic, workerId: 'worker-b', force: true }));
      const stale = store.runBatch(a, { fetchedFrom: 8n, nextOffset: 9n, recordCount: 1 }, (tx) => write(tx, key, 'stale'));
      await expect(stale).rejects.toSatisfy((e) => OncelyError.is(e, 'FENCED'));
      expect(await read(key)).toBe('first');
      expect((await store.position?.(a))?.nextOffset).toBe(8n);
    });

    it('a failing batch rolls back its writes and keeps the position; the error comes back unchanged', async () => {
      const { store, write, read } = await fresh();
      const a = await store.claim(input());
      const key = `k-${a.topic}`;
      const boom = new Error('handler failed');
      const failing = store.runBatch(a, { fetchedFrom: 5n, nextOffset: 6n, recordCount: 1 }, async (tx) => {
        await write(tx, key, 'rolled back');
        throw boom;
      });
      await expect(failing).rejects.toBe(boom);
      expect(await read(key)).toBeUndefined();
      expect((await store.position?.(a))?.nextOffset).toBe(5n);
      // The same claim commits the same range afterwards.
      await store.runBatch(a, { fetchedFrom: 5n, nextOffset: 6n, recordCount: 1 }, (tx) => write(tx, key, 'retried'));
      expect(await read(key)).toBe('retried');
    });

    it('renew reports the claims that were lost; release frees a current claim and never a successor', async () => {
      const { store } = await fresh();
      const a = await store.claim(input());
      const other = await store.claim(input());
      expect(await store.renew([a, other], 30_000)).toEqual([]);
      const b = await store.claim(input({ topic: a.topic, workerId: 'worker-b', force: true }));
      const lost = await store.renew([a, other], 30_000);
      expect(lost.map((c) => c.topic)).toEqual([a.topic]);
      // Stale: leaves worker-b's claim alone, and says it released nothing.
      expect(await store.release(a)).toBe(false);
      expect((await store.position?.(a))?.owner).toBe('worker-b');
      expect(await store.release(b)).toBe(true);
      expect((await store.position?.(b))?.owner).toBeNull();
      expect(await store.release(b)).toBe(false); // already released
    });

    it('keeps the crash evidence across claims until a commit; a claim after an unreleased holder is suspect', async () => {
      const { store } = await fresh();
      if (!store.recordInFlight) return;
      const a = await store.claim(input());
      expect(a.suspect ?? false).toBe(false);
      expect(a.crash).toBeUndefined();
      await store.recordInFlight(a, { from: 5n, to: 9n, deaths: 1, alone: 0 });
      // worker-a "died" without releasing: the next claim is suspect and sees what was in flight.
      const b = await store.claim(input({ topic: a.topic, workerId: 'worker-b', force: true }));
      expect(b.suspect).toBe(true);
      expect(b.crash).toEqual({ from: 5n, to: 9n, deaths: 1, alone: 0 });
      await store.recordInFlight(b, { from: 5n, to: 6n, deaths: 3, alone: 1 });
      await expect(store.recordInFlight(a, null)).rejects.toSatisfy((e) => OncelyError.is(e, 'FENCED'));
      // Pending evidence makes the next claim suspect even after a clean release.
      await store.release(b);
      const c = await store.claim(input({ topic: a.topic, workerId: 'worker-c' }));
      expect(c.suspect).toBe(true);
      expect(c.crash).toEqual({ from: 5n, to: 6n, deaths: 3, alone: 1 });
      // null clears it; so does a commit.
      await store.recordInFlight(c, null);
      expect((await store.claim(input({ topic: a.topic, workerId: 'worker-c' }))).crash).toBeUndefined();
      const d = await store.claim(input({ topic: a.topic, workerId: 'worker-c' }));
      await store.recordInFlight(d, { from: 5n, to: 6n, deaths: 2, alone: 0 });
      await store.runBatch(d, { fetchedFrom: 5n, nextOffset: 6n, recordCount: 1 }, async () => {});
      await store.release({ ...d, nextOffset: 6n });
      const e = await store.claim(input({ topic: a.topic, workerId: 'worker-d' }));
      expect(e.crash).toBeUndefined();
      expect(e.suspect).toBe(false);
    });
  });
}
