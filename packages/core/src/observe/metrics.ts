/**
 * Prometheus metrics of a worker, from its events and its progress, with prom-client (an optional
 * peer dependency: install it to use this). Counters and histograms follow the events as they
 * happen; gauges (lag, owned and targeted partitions, stopped partitions, state) are read from the
 * worker when the registry is scraped, so they are never stale.
 *
 * Names follow Prometheus's conventions: the `oncely_` prefix, base units (`_seconds`), `_total`
 * for counters. Labels are bounded: group, topic, partition and small closed sets (reason, code,
 * state, action); never an offset, a key or a worker-chosen text.
 *
 * ```ts
 * import { Registry } from 'prom-client';
 * const registry = new Registry();
 * workerMetrics(worker, { registry });
 * // serve `await registry.metrics()` with content type registry.contentType
 * ```
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import { ConfigError, OncelyError } from '../errors.js';
import type { Worker } from '../runtime/worker.js';

const require = createRequire(import.meta.url);

/** Options of {@link workerMetrics}. */
export interface WorkerMetricsOptions {
  /** The registry to register in. Default: a new one (see the returned `registry`). */
  registry?: PromClient.Registry;
  /**
   * The prom-client module to build the metrics with. Default: the `prom-client` this package
   * resolves. Pass yours when your app has its own copy, so the metric objects are of your registry's.
   */
  promClient?: typeof PromClient;
  /** Buckets of `oncely_commit_duration_seconds`. Default: 1 ms to 30 s. */
  commitBuckets?: number[];
  /**
   * After how long of failing fetches a partition's `oncely_partition_lag` is no longer reported:
   * its high watermark is that old, and a dashboard would show the lag of before the outage as
   * today's. `oncely_partition_fetch_failing_seconds` says how long instead. Default 10 000 ms.
   */
  lagStaleAfterMs?: number;
}

/** What {@link workerMetrics} made; `stop()` removes its listeners and unregisters its metrics. */
export interface WorkerMetrics {
  readonly registry: PromClient.Registry;
  /** The metric names it registered. */
  readonly names: readonly string[];
  stop(): void;
}

const STATES = ['idle', 'starting', 'running', 'draining', 'stopped', 'failed'] as const;

function loadPromClient(): typeof PromClient {
  try {
    return require('prom-client') as typeof PromClient;
  } catch (e) {
    throw new ConfigError(
      'workerMetrics needs prom-client: npm install prom-client (an optional peer dependency of @oncely/core).',
      {
        cause: e,
      },
    );
  }
}

/** The code a metric label takes for an error: its oncely code, or its class name bucketed as 'OTHER'. */
export function errorCodeLabel(error: unknown): string {
  return OncelyError.is(error) ? error.code : 'OTHER';
}

/** Registers oncely's metrics for `worker` and keeps them current. */
export function workerMetrics<Tx>(worker: Worker<Tx>, options: WorkerMetricsOptions = {}): WorkerMetrics {
  const prom = options.promClient ?? loadPromClient();
  const registry = options.registry ?? new prom.Registry();
  const registers = [registry];
  const group = worker.app.group;
  const lagStaleAfterMs = options.lagStaleAfterMs ?? 10_000;
  if (!Number.isFinite(lagStaleAfterMs) || lagStaleAfterMs < 0)
    throw new ConfigError(`workerMetrics(): lagStaleAfterMs must be a number of ms ≥ 0; got ${lagStaleAfterMs}`);
  const made: string[] = [];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => {
    made.push(name);
    return new prom.Counter<L>({ name, help, labelNames, registers });
  };
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: (g: PromClient.Gauge<L>) => void,
  ) => {
    made.push(name);
    return new prom.Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        collect(this);
      },
    });
  };
  const histogram = (name: string, help: string, buckets: number[]) => {
    made.push(name);
    return new prom.Histogram<'group' | 'topic'>({ name, help, labelNames: ['group', 'topic'], buckets, registers });
  };
  const tp = ['group', 'topic', 'partition'] as const;

  const applied = counter(
    'oncely_records_applied_total',
    'Records applied: committed with their batch, dead letters not included.',
    tp,
  );
  const batches = counter('oncely_batches_committed_total', 'Batches committed (writes and offset in one transaction).', tp);
  const commitSeconds = histogram(
    'oncely_commit_duration_seconds',
    "A batch's transaction from BEGIN to COMMIT, its handler included.",
    options.commitBuckets ?? [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  const fenced = counter(
    'oncely_fenced_commits_total',
    'Claims found stale (a rewind or a takeover): a batch refused at its commit (detected_by commit), by the lease renewal (renewal) or by the release of a hand-off or stop (release).',
    [...tp, 'action', 'detected_by'] as const,
  );
  const retries = counter('oncely_retries_total', 'Retries of a batch or record, by the code of the error that caused them.', [
    'group',
    'topic',
    'code',
  ] as const);
  const deadLetters = counter('oncely_dead_letters_total', 'Records written to the dead letters, by reason.', [
    ...tp,
    'reason',
  ] as const);
  const stopped = counter(
    'oncely_partition_stops_total',
    'Partitions stopped on a record or a batch that cannot go on (the code says why, e.g. a tripped circuit breaker).',
    [...tp, 'code'] as const,
  );
  made.push('oncely_transient_errors_total');
  new prom.Counter<'group' | 'topic' | 'partition'>({
    name: 'oncely_transient_errors_total',
    help: 'Transient errors (the store or the broker failing for a while) retried without spending a record’s tries, per owned partition.',
    labelNames: tp,
    registers,
    collect() {
      this.reset();
      for (const p of worker.progress()) {
        if (p.transientErrors > 0) this.inc({ group, topic: p.topic, partition: String(p.partition) }, p.transientErrors);
      }
    },
  });
  const outOfRange = counter(
    'oncely_offset_out_of_range_total',
    'Stored offsets found outside the log and moved by offsetOutOfRange.',
    tp,
  );
  const claims = counter('oncely_claims_total', 'Partitions claimed (at start, when freed or targeted, after a rewind).', [
    'group',
    'topic',
  ] as const);
  const releases = counter('oncely_releases_total', 'Partitions released (hand-off or stop); a refused release is a fence.', [
    'group',
    'topic',
    'reason',
  ] as const);

  const fetchedRecords = counter('oncely_fetched_records_total', 'Records fetched from Kafka (before decoding).', tp);
  const fetchedBytes = counter('oncely_fetched_bytes_total', 'Key and value bytes of the records fetched from Kafka.', tp);
  const fetchSeconds = histogram(
    'oncely_fetch_duration_seconds',
    "From a fetch call to a partition's records, the broker's long poll included.",
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );

  gauge(
    'oncely_partition_lag',
    'High watermark minus the stored next offset, per owned partition (absent until a fetch saw the high watermark, and while its fetches have failed for longer than lagStaleAfterMs: see oncely_partition_fetch_failing_seconds).',
    tp,
    (g) => {
      for (const p of worker.progress()) {
        if (p.highWatermark === undefined || (p.fetchFailingMs ?? 0) >= lagStaleAfterMs) continue;
        const lag = p.highWatermark - p.nextOffset;
        g.set({ group, topic: p.topic, partition: String(p.partition) }, Number(lag > 0n ? lag : 0n));
      }
    },
  );
  gauge(
    'oncely_partition_fetch_failing_seconds',
    "How long each owned partition's fetches have been failing (0 while it reads): the broker unreachable, no leader. Its lag is not reported once this passes lagStaleAfterMs.",
    tp,
    (g) => {
      for (const p of worker.progress())
        g.set({ group, topic: p.topic, partition: String(p.partition) }, (p.fetchFailingMs ?? 0) / 1000);
    },
  );
  gauge('oncely_partition_next_offset', 'The stored next offset of each owned partition.', tp, (g) => {
    for (const p of worker.progress()) g.set({ group, topic: p.topic, partition: String(p.partition) }, Number(p.nextOffset));
  });
  gauge(
    'oncely_batch_running_seconds',
    'How long the batch transaction in flight on each owned partition has been open (0 between batches): a value that keeps growing is a handler that does not settle.',
    tp,
    (g) => {
      for (const p of worker.progress())
        g.set({ group, topic: p.topic, partition: String(p.partition) }, (p.batchRunningMs ?? 0) / 1000);
    },
  );
  gauge('oncely_partitions_owned', 'Partitions this worker runs now.', ['group'] as const, (g) => {
    g.set({ group }, worker.progress().length);
  });
  gauge('oncely_partitions_targeted', 'Partitions membership says this worker should own.', ['group'] as const, (g) => {
    g.set({ group }, worker.membership().target.length);
  });
  gauge(
    'oncely_partitions_waiting',
    'Targeted partitions another worker still holds (a hand-off or a lease to expire).',
    ['group'] as const,
    (g) => {
      g.set({ group }, worker.membership().waiting.length);
    },
  );
  gauge('oncely_partitions_stopped', 'Owned partitions that are stopped and need an operator.', ['group'] as const, (g) => {
    g.set({ group }, worker.progress().filter((p) => p.stopped !== undefined).length);
  });
  gauge('oncely_worker_state', 'The worker state: 1 for the current one, 0 for the others.', ['group', 'state'] as const, (g) => {
    for (const s of STATES) g.set({ group, state: s }, worker.state === s ? 1 : 0);
  });

  const p = (x: { topic: string; partition: number }) => ({ group, topic: x.topic, partition: String(x.partition) });
  const off = [
    worker.on('commit', (c) => {
      applied.inc(p(c), c.records);
      batches.inc(p(c));
      commitSeconds.observe({ group, topic: c.topic }, c.durationMs / 1000);
    }),
    worker.on('fetch', (f) => {
      fetchedRecords.inc(p(f), f.records);
      fetchedBytes.inc(p(f), f.bytes);
      fetchSeconds.observe({ group, topic: f.topic }, f.durationMs / 1000);
    }),
    worker.on('fenced', (f) => fenced.inc({ ...p(f), action: f.action, detected_by: f.detectedBy })),
    worker.on('retry', (r) => retries.inc({ group, topic: r.topic, code: errorCodeLabel(r.error) })),
    // A dead letter's commit carries no records: oncely_records_applied_total never counts it.
    worker.on('dead-letter', (d) => deadLetters.inc({ ...p(d), reason: d.reason })),
    worker.on('partition-stopped', (s) => stopped.inc({ ...p(s), code: errorCodeLabel(s.error) })),
    worker.on('out-of-range', (o) => outOfRange.inc(p(o))),
    worker.on('claim', (c) => claims.inc({ group, topic: c.topic })),
    worker.on('release', (r) => releases.inc({ group, topic: r.topic, reason: r.reason })),
  ];
  return {
    registry,
    names: made,
    stop() {
      for (const o of off) o();
      for (const name of made) registry.removeSingleMetric(name);
    },
  };
}
