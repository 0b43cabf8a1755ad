/**
 * A mutex whose urgent waiters go first. After an unclean hand-over, records are tried one at a
 * time across the whole worker, so a process death is charged to the one record in flight; a
 * record that already has attempts charged goes first, so a commit can clear it soonest.
 */
export class PriorityMutex {
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
