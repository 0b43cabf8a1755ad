/**
 * The crash budget: after an unclean hand-over (the previous holder died, so the claim is
 * `suspect`), records are applied one at a time and each attempt is counted in the store before
 * its handler runs, so a record that keeps killing the process is recognised and dead-lettered
 * once it has used up `crashBudget`, without running its handler again.
 */
import { WorkerCrashedError } from '../errors.js';

/**
 * A mutex whose urgent waiters go first, shared by a worker's runners: suspect records are tried
 * one at a time across the whole worker, so a process death is charged to the one record in
 * flight; a record that already has attempts charged goes first, so a commit can clear it soonest.
 */
export class SuspectGate {
  #held = false;
  readonly #urgent: Array<() => void> = [];
  readonly #normal: Array<() => void> = [];

  async acquire(urgent: boolean): Promise<() => void> {
    if (this.#held) await new Promise<void>((resolve) => (urgent ? this.#urgent : this.#normal).push(resolve));
    this.#held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#urgent.shift() ?? this.#normal.shift();
      if (next) next();
      else this.#held = false;
    };
  }
}

/**
 * The error a suspect record is dead-lettered with once the process died more than `crashBudget`
 * times while applying it (`attempts` counts this one too); undefined while it may still run.
 */
export function crashBudgetSpent(attempts: number, crashBudget: number): WorkerCrashedError | undefined {
  if (attempts <= crashBudget) return undefined;
  return new WorkerCrashedError(
    `The worker process ended ${attempts - 1} times while applying this record (crashBudget ${crashBudget}); it was dead-lettered without running its handler again.`,
  );
}
