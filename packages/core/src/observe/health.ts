/**
 * Liveness and readiness of a worker, for `/healthz` and `/readyz` (Kubernetes probes, load
 * balancers). Each answer carries its reasons, so a failing probe says what to look at.
 *
 * - **live**: the process is not stuck. The event loop's lag is measured continuously; a loop that
 *   stalled longer than `stallMs` since the last answer, or a worker that failed, is not live
 *   (restart it). A worker that is draining or stopped is still live: it is ending on its own.
 * - **ready**: the worker does its share: it is running, PostgreSQL and Kafka answer (a round trip
 *   each, bounded by `probeTimeoutMs`), and membership is settled: it owns every partition it
 *   targets, or waits only for leases to expire or hand-offs to finish. A worker that targets
 *   partitions but owns none while others hold them (its partitions were all taken) is not ready.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { toError } from '../errors.js';
import type { Worker } from '../runtime/worker.js';

/** One probe's answer. */
export interface HealthReport {
  ok: boolean;
  /** What is wrong (empty when ok), or, for a ready worker, a short account of why it is. */
  reasons: string[];
  /** Per check: ok or the problem. */
  checks: Record<string, { ok: boolean; detail: string }>;
}

/** Options of {@link workerHealth}. */
export interface WorkerHealthOptions {
  /** An event-loop stall longer than this makes the worker not live. Default 10 000 ms. */
  stallMs?: number;
  /** Time the database and broker round trips of a readiness probe may take. Default 2 000 ms. */
  probeTimeoutMs?: number;
}

/** The probes of one worker; `stop()` ends the event-loop monitor. */
export interface WorkerHealth {
  live(): HealthReport;
  ready(): Promise<HealthReport>;
  stop(): void;
}

function report(checks: HealthReport['checks']): HealthReport {
  const bad = Object.entries(checks).filter(([, c]) => !c.ok);
  return {
    ok: bad.length === 0,
    reasons:
      bad.length > 0
        ? bad.map(([name, c]) => `${name}: ${c.detail}`)
        : Object.entries(checks).map(([n, c]) => `${n}: ${c.detail}`),
    checks,
  };
}

async function within(what: Promise<unknown>, ms: number, label: string): Promise<{ ok: boolean; detail: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      what,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${label} did not answer within ${ms} ms`)), ms);
      }),
    ]);
    return { ok: true, detail: 'answers' };
  } catch (e) {
    return { ok: false, detail: toError(e).message };
  } finally {
    clearTimeout(timer);
  }
}

/** Probes for `worker`. */
export function workerHealth<Tx>(worker: Worker<Tx>, options: WorkerHealthOptions = {}): WorkerHealth {
  const stallMs = options.stallMs ?? 10_000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 2_000;
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  const { store, reader } = worker.options;
  const topics = worker.app.topics;

  return {
    live() {
      const maxMs = delay.max / 1e6;
      delay.reset();
      const state = worker.state;
      return report({
        'event-loop':
          maxMs > stallMs
            ? { ok: false, detail: `stalled ${Math.round(maxMs)} ms (limit ${stallMs} ms)` }
            : { ok: true, detail: `max lag ${Math.round(maxMs)} ms` },
        worker:
          state === 'failed'
            ? { ok: false, detail: `failed: ${worker.error?.message ?? 'unknown error'}` }
            : { ok: true, detail: state },
      });
    },
    async ready() {
      const state = worker.state;
      const checks: HealthReport['checks'] = {
        worker: state === 'running' ? { ok: true, detail: 'running' } : { ok: false, detail: `${state}, not running` },
      };
      const [db, kafka] = await Promise.all([
        store.ping
          ? within(store.ping(), probeTimeoutMs, 'the database')
          : Promise.resolve({ ok: true, detail: 'not checked (the store has no ping)' }),
        topics.length > 0
          ? within(reader.highWatermarks(topics[0]!, [0]), probeTimeoutMs, 'Kafka')
          : Promise.resolve({ ok: true, detail: 'no topics' }),
      ]);
      checks.postgres = db;
      checks.kafka = kafka;
      const view = worker.membership();
      const owned = new Set(worker.progress().map((p) => `${p.topic}:${p.partition}`));
      const missing = view.target.filter((t) => !owned.has(t));
      const waiting = new Set(view.waiting.map((w) => w.partition));
      const unexplained = missing.filter((t) => !waiting.has(t));
      if (view.target.length > 0 && owned.size === 0 && missing.length === view.target.length && state === 'running') {
        checks.membership = {
          ok: false,
          detail: `owns none of its ${view.target.length} targeted partition(s); ${view.waiting.length} held by other workers`,
        };
      } else if (unexplained.length > 0) {
        checks.membership = {
          ok: false,
          detail: `not claimed yet: ${unexplained.slice(0, 5).join(', ')}${unexplained.length > 5 ? ', …' : ''}`,
        };
      } else {
        checks.membership = {
          ok: true,
          detail: `${view.kind}: owns ${owned.size} of ${view.target.length} targeted${waiting.size > 0 ? `, waiting for ${waiting.size}` : ''}`,
        };
      }
      return report(checks);
    },
    stop() {
      delay.disable();
    },
  };
}
