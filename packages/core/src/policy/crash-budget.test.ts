import { describe, expect, it } from 'vitest';
import { planSuspect, SuspectGate } from './crash-budget.js';

describe('planSuspect (what to apply after an unclean hand-over)', () => {
  const at = (from: bigint, to: bigint, deaths: number, alone: number) => ({ from, to, deaths, alone });

  it('runs the usual batch when nothing is known, and the same range as a unit after one death: no gate', () => {
    expect(planSuspect(undefined, 1, 2000, 5)).toEqual({ kind: 'attempt', take: 2000, gated: false, deaths: 1, alone: 0 });
    expect(planSuspect(at(0n, 2000n, 1, 0), 2000, 2000, 5)).toEqual({
      kind: 'attempt',
      take: 2000,
      gated: false,
      deaths: 2,
      alone: 0,
    });
    // The fetch may hold fewer records of the range than before: what there is of it.
    expect(planSuspect(at(0n, 2000n, 1, 0), 700, 700, 5)).toMatchObject({ take: 700, deaths: 2 });
  });

  it('halves a range in flight at two deaths or more, behind the gate; one record alone counts its deaths alone', () => {
    expect(planSuspect(at(0n, 2000n, 2, 0), 2000, 2000, 5)).toEqual({
      kind: 'attempt',
      take: 1000,
      gated: true,
      deaths: 3,
      alone: 0,
    });
    expect(planSuspect(at(0n, 3n, 4, 0), 3, 2000, 5)).toMatchObject({ take: 2, gated: true, deaths: 5, alone: 0 });
    // Narrowed to one record: its first death alone, then the next ones.
    expect(planSuspect(at(4n, 6n, 5, 0), 1, 2000, 5)).toEqual({ kind: 'attempt', take: 1, gated: true, deaths: 6, alone: 1 });
    expect(planSuspect(at(4n, 5n, 6, 1), 1, 2000, 5)).toEqual({ kind: 'attempt', take: 1, gated: true, deaths: 7, alone: 2 });
    expect(planSuspect(at(4n, 5n, 9, 4), 1, 2000, 5)).toMatchObject({ kind: 'attempt', alone: 5 });
  });

  it('finds the record the cause only at crashBudget deaths alone in a row', () => {
    const evidence = at(4n, 5n, 10, 5);
    expect(planSuspect(evidence, 1, 2000, 5)).toEqual({ kind: 'verdict', evidence });
    expect(planSuspect(evidence, 1, 2000, 6)).toMatchObject({ kind: 'attempt', alone: 6 });
    // Many deaths with a wider range in flight are no verdict on its first record.
    expect(planSuspect(at(4n, 40n, 50, 0), 36, 2000, 5)).toMatchObject({ kind: 'attempt', take: 18 });
  });
});

describe('SuspectGate (a narrowing piece runs alone in the worker)', () => {
  const tick = () => new Promise((r) => setImmediate(r));

  it('lets shared work run freely without a reservation, and holds it back while one is held', async () => {
    const gate = new SuspectGate();
    const a = await gate.shared();
    const b = await gate.shared(); // no reservation: both at once
    const reservation = gate.reserve();
    const order: string[] = [];
    const later = gate.shared().then((release) => {
      order.push('shared');
      return release;
    });
    // The piece waits for the transactions in flight, then runs with nothing else.
    const piece = gate.exclusive(false).then((release) => {
      order.push('exclusive');
      return release;
    });
    await tick();
    expect(order).toEqual([]);
    a();
    await tick();
    expect(order).toEqual([]);
    b();
    await tick();
    expect(order).toEqual(['exclusive']);
    (await piece)();
    await tick();
    expect(order).toEqual(['exclusive']); // still reserved: the narrowing is not done
    reservation();
    await tick();
    expect(order).toEqual(['exclusive', 'shared']);
    (await later)();
  });

  it('runs one piece at a time, the urgent ones first', async () => {
    const gate = new SuspectGate();
    const reservation = gate.reserve();
    const first = await gate.exclusive(false);
    const order: string[] = [];
    const noted = (name: string) => (release: () => void) => {
      order.push(name);
      return release;
    };
    const normal = gate.exclusive(false).then(noted('normal'));
    const urgent = gate.exclusive(true).then(noted('urgent'));
    await tick();
    expect(order).toEqual([]);
    first();
    await tick();
    expect(order).toEqual(['urgent']);
    (await urgent)();
    await tick();
    expect(order).toEqual(['urgent', 'normal']);
    (await normal)();
    reservation();
  });
});
