/**
 * The crash budget: after an unclean hand-over (the previous holder died, so the claim is
 * `suspect`), the runtime writes what it is about to apply to the store before it applies it, so
 * that a death during it is remembered. A record is blamed only on evidence:
 *
 * - no history at the position: the first transaction runs as usual (normal size, in parallel
 *   with the other partitions), its range written first: one extra statement per hand-over;
 * - the range was in flight at one death: it runs once more as a unit, as usual;
 * - in flight at two deaths or more: the worker narrows it down, one piece at a time with nothing
 *   else in flight in the worker (SuspectGate: its other transactions wait), so that a death is
 *   charged to that piece alone: the first half runs; if it commits, the rest keeps the deaths and
 *   is halved in turn, if the process dies, the half is halved after the restart;
 * - one record applied alone at `crashBudget` consecutive deaths is the cause: its partition stops
 *   (onCrashLoop: 'stop-partition', the default) or it is dead-lettered (onCrashLoop: 'dead-letter').
 *
 * Any commit clears the evidence. Exactly-once does not depend on any of this (the offset
 * compare-and-set does); the budget only decides when to stop retrying a record that kills the process.
 */
import { WorkerCrashedError } from '../errors.js';
import type { CrashEvidence } from '../store/types.js';

/**
 * The worker's gate for narrowing down a range in flight at repeated deaths, shared by its runners:
 * such a piece runs alone in the worker (no other transaction in flight, suspect or not), so that
 * a death during it is evidence against that piece and nothing else. A runner with such a range
 * `reserve()`s the gate as soon as it knows (at its claim), so the worker's other transactions
 * wait from then on and the narrowing goes first in a new process; `exclusive()` runs one piece
 * once nothing else is in flight (urgent ones, with deaths alone already, first); every other
 * transaction takes `shared()`, which waits only while a reservation is held. Nothing waits when
 * no partition has such a history.
 */
export class SuspectGate {
  #reserved = 0;
  #exclusive = false;
  #shared = 0;
  readonly #urgent: Array<() => void> = [];
  readonly #normal: Array<() => void> = [];
  readonly #sharedWaiters: Array<() => void> = [];

  /** Announces a runner that will narrow a range: shared() waits until it is released. */
  reserve(): () => void {
    this.#reserved++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#reserved--;
      this.#wake();
    };
  }

  /** Runs one narrowing piece with nothing else in flight in the worker (needs a reservation). */
  async exclusive(urgent: boolean): Promise<() => void> {
    if (this.#exclusive || this.#shared > 0) {
      // #wake hands the gate over with #exclusive already set, so nothing slips in before this runs.
      await new Promise<void>((resolve) => (urgent ? this.#urgent : this.#normal).push(resolve));
    } else this.#exclusive = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#exclusive = false;
      this.#wake();
    };
  }

  /** Any other transaction: runs at once unless a narrowing is reserved or running. */
  async shared(): Promise<() => void> {
    while (this.#reserved > 0 || this.#exclusive) await new Promise<void>((resolve) => this.#sharedWaiters.push(resolve));
    this.#shared++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#shared--;
      this.#wake();
    };
  }

  #wake(): void {
    if (this.#exclusive) return;
    if (this.#shared === 0) {
      const next = this.#urgent.shift() ?? this.#normal.shift();
      if (next) {
        this.#exclusive = true;
        next();
        return;
      }
    }
    if (this.#reserved === 0) for (const w of this.#sharedWaiters.splice(0)) w();
  }
}

/** What to do with the records at a suspect position. */
export type SuspectPlan =
  /** The record at the position was alone in flight at `crashBudget` consecutive deaths: the cause. */
  | { kind: 'verdict'; evidence: CrashEvidence }
  /**
   * Apply the first `take` records in one transaction, behind the worker's SuspectGate when `gated`,
   * after writing evidence with `deaths` and `alone` (the counts if this attempt dies too).
   */
  | { kind: 'attempt'; take: number; gated: boolean; deaths: number; alone: number };

/**
 * Decides the next transaction at a suspect position. `pending` is the evidence at this position
 * (undefined: none), `inRange` how many of the available records lie in its range (at least 1),
 * `normal` how many records the transaction would take without any history.
 */
export function planSuspect(
  pending: CrashEvidence | undefined,
  inRange: number,
  normal: number,
  crashBudget: number,
): SuspectPlan {
  if (!pending || pending.deaths === 0) return { kind: 'attempt', take: normal, gated: false, deaths: 1, alone: 0 };
  const take = Math.max(1, Math.min(inRange, normal));
  if (pending.deaths === 1) return { kind: 'attempt', take, gated: false, deaths: 2, alone: 0 };
  if (take > 1) return { kind: 'attempt', take: Math.ceil(take / 2), gated: true, deaths: pending.deaths + 1, alone: 0 };
  if (pending.alone >= crashBudget) return { kind: 'verdict', evidence: pending };
  // A single record's range counts its alone deaths on; a wider one had none.
  const alone = pending.to - pending.from === 1n ? pending.alone + 1 : 1;
  return { kind: 'attempt', take: 1, gated: true, deaths: pending.deaths + 1, alone };
}

/** The error of a record found to be the cause of `evidence.alone` deaths in a row, with what happens now. */
export function crashLoopError(
  topic: string,
  partition: number,
  evidence: CrashEvidence,
  crashBudget: number,
  then: string,
): WorkerCrashedError {
  return new WorkerCrashedError(
    `The worker process died ${evidence.alone} times in a row while record ${topic}/${partition}/${evidence.from} was ` +
      `applied alone (crashBudget ${crashBudget}; ${evidence.deaths} deaths with it in flight in all). ${then}`,
  );
}
