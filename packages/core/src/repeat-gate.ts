/**
 * One log line per change of state for messages that repeat (a library logging every failed
 * connection attempt of an outage): the first occurrence of a key is logged; repeats of it are
 * counted, and once per window the count is reported in one line (`(N repeats suppressed)`). A key
 * quiet for a whole window is forgotten, so its next occurrence (a new outage) is logged again.
 * The timers are unref'd: a gate never keeps a process alive.
 */
export class RepeatGate {
  readonly #entries = new Map<string, { suppressed: number; timer: NodeJS.Timeout; report: (n: number) => void }>();

  constructor(readonly windowMs = 30_000) {}

  /**
   * Whether to log this occurrence of `key` now. A repeat returns false; `report(n)` is called
   * with the repeats of the window when it ends (and by {@link flush}), never with 0.
   */
  pass(key: string, report: (suppressed: number) => void): boolean {
    const e = this.#entries.get(key);
    if (e) {
      e.suppressed++;
      e.report = report;
      return false;
    }
    this.#entries.set(key, { suppressed: 0, timer: this.#arm(key), report });
    return true;
  }

  #arm(key: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const e = this.#entries.get(key);
      if (!e) return;
      if (e.suppressed === 0) {
        this.#entries.delete(key);
        return;
      }
      const n = e.suppressed;
      e.suppressed = 0;
      e.timer = this.#arm(key);
      e.report(n);
    }, this.windowMs);
    timer.unref();
    return timer;
  }

  /** Reports what is still counted and forgets every key (at close). */
  flush(): void {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    for (const e of entries) {
      clearTimeout(e.timer);
      if (e.suppressed > 0) e.report(e.suppressed);
    }
  }
}
