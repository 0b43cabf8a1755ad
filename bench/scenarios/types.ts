import type { StageTimings } from '../config.js';
import type { Window } from '../measure.js';

/** What a scenario function returns to the child's entry point (scenario.ts), which adds RSS and rates. */
export interface Outcome {
  /** Records processed (for the COPY ceiling: rows written). */
  records: number;
  ok: boolean;
  /** Could not run here (see ScenarioResult.skipped). */
  skipped?: boolean;
  /** What the check found, in words. */
  check: string;
  window: Window;
  /** Commit latencies (the `commit` event's durationMs) of the batches that carried records. */
  commitDurations?: number[];
  stages?: StageTimings;
}
