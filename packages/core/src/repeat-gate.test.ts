import { afterEach, describe, expect, it, vi } from 'vitest';
import { RepeatGate } from './repeat-gate.js';

describe('RepeatGate', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('passes the first occurrence, counts repeats, reports them once per window, and forgets a quiet key', () => {
    vi.useFakeTimers();
    const gate = new RepeatGate(1000);
    const reports: Array<[string, number]> = [];
    const pass = (key: string) => gate.pass(key, (n) => reports.push([key, n]));
    expect(pass('a')).toBe(true);
    expect(pass('b')).toBe(true);
    for (let i = 0; i < 12; i++) expect(pass('a')).toBe(false);
    expect(reports).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(reports).toEqual([['a', 12]]);
    // 'a' repeats in the next window too: one more report; 'b' was quiet and is forgotten.
    expect(pass('a')).toBe(false);
    expect(pass('b')).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(reports).toEqual([
      ['a', 12],
      ['a', 1],
    ]);
    // A whole quiet window: the next 'a' is a new state, logged again.
    vi.advanceTimersByTime(1000);
    expect(pass('a')).toBe(true);
  });

  it('flush reports what is still counted and forgets every key', () => {
    vi.useFakeTimers();
    const gate = new RepeatGate(60_000);
    const reports: number[] = [];
    gate.pass('x', (n) => reports.push(n));
    gate.pass('x', (n) => reports.push(n));
    gate.pass('x', (n) => reports.push(n));
    gate.flush();
    expect(reports).toEqual([2]);
    expect(gate.pass('x', (n) => reports.push(n))).toBe(true);
    vi.advanceTimersByTime(120_000);
    expect(reports).toEqual([2]);
  });
});
