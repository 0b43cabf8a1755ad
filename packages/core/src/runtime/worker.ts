import type { App } from '../app/define-app.js';
import type { DefaultTx } from '../app/types.js';
import { OncelyError, StateError, toError } from '../errors.js';
import { StaticMembership } from '../membership/static.js';
import type { Membership } from '../membership/types.js';
import { SuspectGate } from '../policy/crash-budget.js';
import type { Claim } from '../store/types.js';
import { sleep } from '../time.js';
import { type WorkerEvent, WorkerEvents, type WorkerListener } from './events.js';
import { Fetcher } from './fetcher.js';
import { type CompiledWorkerOptions, compileWorkerOptions, type WorkerOptions } from './options.js';
import { PartitionRunner } from './partition-runner.js';
import { StartWait } from './start-wait.js';
import type { PartitionProgress, WorkerState } from './types.js';

/**
 * A worker process's engine: owns a set of partitions (static membership), fetches them at the
 * offsets stored in the store, and applies each partition's batches in order, each in one
 * transaction with the advance of its stored offset.
 *
 * Lifecycle: idle → starting → running → draining → stopped, or failed. `start()` and `stop()`
 * are idempotent and return the in-flight promise; `stop()` awaits a pending `start()`.
 */
export class Worker<Tx = DefaultTx> {
  readonly options: CompiledWorkerOptions<Tx>;
  readonly #events: WorkerEvents;
  #state: WorkerState = 'idle';
  #error: Error | undefined;
  /** Why start() failed while a stop() waited for it. */
  #startError: Error | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  readonly #runners = new Map<string, PartitionRunner<Tx>>();
  readonly #suspectGate = new SuspectGate();
  readonly #runnerDone = new Map<string, Promise<void>>();
  readonly #fetchAbort = new AbortController();
  readonly #stopSignal = new AbortController();
  /** Aborted by stop(): cuts a start-up wait short (the stop signal fires only after start settles). */
  readonly #startAbort = new AbortController();
  #fetchLoop: Promise<void> | undefined;
  readonly #membership: Membership;
  readonly #fetcher: Fetcher;
  #finished!: { resolve: () => void; reject: (e: Error) => void };
  readonly #done: Promise<void>;

  constructor(
    readonly app: App<Tx>,
    options: WorkerOptions<Tx>,
  ) {
    this.options = compileWorkerOptions(options);
    this.#events = new WorkerEvents(this.options.logger);
    const { reader, store, workerId, leaseMs, initialOffset, logger, selection, split } = this.options;
    this.#membership = new StaticMembership(
      { group: app.group, topics: app.topics, reader, store, workerId, leaseMs, initialOffset, logger },
      { selection, split },
    );
    this.#fetcher = new Fetcher(
      { reader, logger, maxWaitMs: this.options.fetchMaxWaitMs, maxBytesPerPartition: this.options.fetchMaxBytesPerPartition },
      this.#runners,
    );
    this.#done = new Promise<void>((resolve, reject) => {
      this.#finished = { resolve, reject };
    });
    // Callers that only use start/stop must not see an unhandled rejection from `done`.
    this.#done.catch(() => {});
  }

  /**
   * Listens to an event (see {@link WorkerEventMap}): `worker.on('commit', (c) => …)`. Any number of
   * listeners; one that throws or rejects is logged and never hurts the worker. Returns a function
   * that removes the listener. Add listeners before `start()` to see every event.
   */
  on<E extends WorkerEvent>(event: E, listener: WorkerListener<E>): () => void {
    return this.#events.on(event, listener);
  }

  /** Removes a listener added with {@link on}. */
  off<E extends WorkerEvent>(event: E, listener: WorkerListener<E>): void {
    this.#events.off(event, listener);
  }

  get state(): WorkerState {
    return this.#state;
  }

  /** The error that made the worker fail, if it did. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Resolves when the worker has stopped; rejects with the cause when it failed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** The partitions this worker applies, with their committed positions. */
  progress(): PartitionProgress[] {
    return [...this.#runners.values()].map((r) => r.progress());
  }

  /**
   * Claims the assigned partitions and starts applying them. Resolves once running (or once stopped,
   * when stop() is called during start-up). An unavailable database or broker, or a partition row
   * locked by another transaction, is waited out with back-off for up to startTimeoutMs; what
   * cannot succeed by waiting (configuration, credentials, an unknown topic) rejects at once.
   */
  start(): Promise<void> {
    if (
      this.#state === 'stopped' ||
      this.#state === 'failed' ||
      this.#state === 'draining' ||
      (this.#stopping && !this.#starting)
    ) {
      return Promise.reject(
        new StateError(`Worker.start() called in state '${this.#state}'; a worker starts once: create a new one`),
      );
    }
    if (this.#starting) return this.#starting;
    if (this.#state !== 'idle')
      return Promise.reject(new StateError(`Worker.start() called in state '${this.#state}'; a worker starts once`));
    this.#starting = this.#start();
    return this.#starting;
  }

  /** Drains: stops fetching, lets in-flight transactions finish (up to drainTimeoutMs), releases claims, closes. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#startAbort.abort();
    this.#stopping = this.#shutdown(undefined);
    return this.#stopping;
  }

  /** Stops now: in-flight transactions are rolled back (nothing partial commits), then the same cleanup as stop(). */
  async abort(): Promise<void> {
    for (const r of this.#runners.values()) r.abort();
    await this.stop();
  }

  async #start(): Promise<void> {
    this.#setState('starting');
    const { reader, logger, store, startTimeoutMs, prepare } = this.options;
    const wait = new StartWait({
      timeoutMs: startTimeoutMs,
      signal: this.#startAbort.signal,
      logger,
      isTransient: store.isTransientError?.bind(store),
    });
    try {
      this.app.validate();
      if (prepare) await wait.step('prepare the store', prepare);
      await wait.step('connect to Kafka', () => reader.connect());
      const claims = await wait.step('claim partitions', () => this.#membership.claim());
      for (const c of claims) {
        this.#events.emit('claim', { topic: c.topic, partition: c.partition, epoch: c.epoch, nextOffset: c.nextOffset });
      }
      const targets =
        this.options.until === 'caught-up'
          ? await wait.step('read high watermarks', () => this.#highWatermarks(claims))
          : undefined;
      for (const claim of claims) this.#addRunner(claim, targets?.get(`${claim.topic}:${claim.partition}`));
      if (this.#stopSignal.signal.aborted) return;
      this.#fetchLoop = this.#fetcher.run(this.#fetchAbort.signal);
      this.#membership.keep(
        () => [...this.#runners.values()].map((r) => r.claim),
        (lost) => {
          // A lost claim (another worker, or a rewind) makes its runner re-check ownership.
          const runner = this.#runners.get(`${lost.topic}:${lost.partition}`);
          if (runner && runner.claim.epoch === lost.epoch) runner.revalidate();
        },
        this.#stopSignal.signal,
      );
      this.#setState('running');
      if (this.options.until === 'caught-up' && this.#runners.size === 0) void this.stop();
      logger.info('worker running', {
        group: this.app.group,
        partitions: claims.map((c) => `${c.topic}:${c.partition}@${c.nextOffset}`).join(','),
      });
    } catch (e) {
      // stop() during start-up: its shutdown runs once this settles, and start() resolves stopped.
      if (this.#startAbort.signal.aborted && OncelyError.is(e, 'ABORTED')) {
        logger.info('stopped during start-up');
        return;
      }
      const error = toError(e);
      logger.error('worker failed to start', { error: error.message, code: (error as { code?: string }).code });
      if (this.#stopping) {
        // A stop() is waiting for this start to settle: its shutdown ends the worker with this error.
        this.#startError = error;
        throw error;
      }
      this.#startAbort.abort();
      this.#stopping = this.#shutdown(error);
      await this.#stopping;
      throw error;
    }
  }

  /** The high watermarks a bounded run stops at, taken once at start. */
  async #highWatermarks(claims: Claim[]): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    const byTopic = new Map<string, number[]>();
    for (const c of claims) byTopic.set(c.topic, [...(byTopic.get(c.topic) ?? []), c.partition]);
    for (const [topic, partitions] of byTopic) {
      for (const [p, hw] of await this.options.reader.highWatermarks(topic, partitions)) out.set(`${topic}:${p}`, hw);
    }
    return out;
  }

  #addRunner(claim: Claim, stopAt?: bigint): void {
    const key = `${claim.topic}:${claim.partition}`;
    const runner = new PartitionRunner(
      this.app,
      this.options,
      claim,
      () => this.#fetcher.wake(),
      this.#events,
      this.#suspectGate,
    );
    runner.stopAt = stopAt;
    this.#runners.set(key, runner);
    const done = runner.run().then(
      (exit) => {
        if (exit === 'dropped') this.#runners.delete(key);
        if (this.options.until === 'caught-up' && [...this.#runners.values()].every((r) => r.caughtUp)) {
          this.options.logger.info('caught up with the high watermarks taken at start; stopping');
          void this.stop();
        }
      },
      (e: unknown) => {
        // A fatal partition error (e.g. offset out of range under 'fail') fails the whole worker.
        void this.#fail(toError(e));
      },
    );
    this.#runnerDone.set(key, done);
  }

  async #fail(error: Error): Promise<void> {
    if (this.#stopping) return;
    this.options.logger.error('worker failed', { error: error.message, code: (error as { code?: string }).code });
    this.#stopping = this.#shutdown(error);
    await this.#stopping;
  }

  /** Shutdown order: stop fetching → let in-flight transactions finish → release claims → close reader → close store. */
  async #shutdown(error: Error | undefined): Promise<void> {
    if (this.#starting && this.#state === 'starting' && !error) await this.#starting.catch(() => {});
    error ??= this.#startError;
    const { logger, store, reader, drainTimeoutMs, closeOnStop } = this.options;
    if (this.#state !== 'stopped' && this.#state !== 'failed') this.#setState('draining');
    this.#stopSignal.abort();
    this.#fetchAbort.abort();
    this.#fetcher.wake();
    for (const r of this.#runners.values()) error ? r.abort() : r.stop();
    const step = async (name: string, fn: () => Promise<unknown> | undefined) => {
      try {
        await fn();
      } catch (e) {
        logger.warn(`shutdown: ${name} failed`, { error: toError(e).message });
      }
    };
    const drained = Promise.all([...this.#runnerDone.values()]);
    // The timer is cancelled once drained: a pending timer would keep the process alive.
    const drainTimer = new AbortController();
    const timedOut = await Promise.race([
      drained.then(() => false),
      sleep(drainTimeoutMs, drainTimer.signal).then(() => !drainTimer.signal.aborted),
    ]);
    drainTimer.abort();
    if (timedOut) {
      logger.warn('drain timeout: aborting in-flight transactions (they roll back)', { drainTimeoutMs });
      for (const r of this.#runners.values()) r.abort();
      await drained;
    }
    await step('fetch loop', () => this.#fetchLoop);
    await step('release claims', () =>
      this.#membership.release(
        [...this.#runners.values()].map((r) => r.claim),
        (c) => this.#events.emit('release', { topic: c.topic, partition: c.partition, epoch: c.epoch }),
      ),
    );
    if (closeOnStop) {
      await step('close reader', () => reader.close());
      await step('close store', () => store.close());
    }
    if (error) {
      this.#error = error;
      this.#setState('failed');
      this.#finished.reject(error);
    } else {
      this.#setState('stopped');
      this.#finished.resolve();
    }
  }

  #setState(state: WorkerState): void {
    this.#state = state;
    this.#events.emit('state', state);
  }
}

/** Creates a worker for an app: `await createWorker(app, { store, reader }).start()`. */
export function createWorker<Tx>(app: App<Tx>, options: WorkerOptions<Tx>): Worker<Tx> {
  return new Worker(app, options);
}
