import type { App } from '../app/define-app.js';
import type { DefaultTx } from '../app/types.js';
import { markLogged, OncelyError, PartitionStoppedError, StateError, toError, wasLogged } from '../errors.js';
import { ElasticMembership } from '../membership/elastic.js';
import { StaticMembership } from '../membership/static.js';
import type { Membership, MembershipContext, MembershipHost, MembershipView } from '../membership/types.js';
import { SuspectGate } from '../policy/crash-budget.js';
import type { Claim } from '../store/types.js';
import { sleep } from '../time.js';
import { type WorkerEvent, WorkerEvents, type WorkerListener } from './events.js';
import { Fetcher } from './fetcher.js';
import { checkHandlerResolves } from './handler-invoker.js';
import { type CompiledWorkerOptions, compileWorkerOptions, type WorkerOptions } from './options.js';
import { PartitionRunner, type RunnerExit } from './partition-runner.js';
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
  /** Why a partition's runner failed after the worker had begun to stop. */
  #runnerError: Error | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  readonly #runners = new Map<string, PartitionRunner<Tx>>();
  readonly #suspectGate = new SuspectGate();
  readonly #runnerDone = new Map<string, Promise<RunnerExit | 'failed'>>();
  readonly #fetchAbort = new AbortController();
  readonly #stopSignal = new AbortController();
  /** Aborted by stop(): cuts a start-up wait short (the stop signal fires only after start settles). */
  readonly #startAbort = new AbortController();
  #fetchLoop: Promise<void> | undefined;
  readonly #membership: Membership & { reevaluate(): void };
  readonly #fetcher: Fetcher;
  #finished!: { resolve: () => void; reject: (e: Error) => void };
  readonly #done: Promise<void>;

  constructor(
    readonly app: App<Tx>,
    options: WorkerOptions<Tx>,
  ) {
    this.options = compileWorkerOptions(options);
    this.#events = new WorkerEvents(this.options.logger);
    // A stopped partition can end a bounded run (it will not catch up before the worker stops).
    this.#events.on('partition-stopped', () => queueMicrotask(() => this.#maybeCaughtUp()));
    const o = this.options;
    const ctx: MembershipContext<Tx> = {
      group: app.group,
      topics: app.topics,
      reader: o.reader,
      store: o.store,
      workerId: o.workerId,
      leaseMs: o.leaseMs,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      sessionTimeoutMs: o.sessionTimeoutMs,
      partitionRefreshMs: o.partitionRefreshMs,
      initialOffset: o.initialOffset,
      logger: o.logger,
    };
    this.#membership =
      o.membership === 'elastic'
        ? new ElasticMembership(ctx, {
            ...(o.maxPartitions !== undefined ? { maxPartitions: o.maxPartitions } : {}),
            ...(o.weight !== undefined ? { weight: o.weight } : {}),
          })
        : new StaticMembership(ctx, { selection: o.selection, split: o.split, force: o.force, onHeld: o.onHeld });
    const { reader, logger } = o;
    this.#fetcher = new Fetcher(
      {
        group: app.group,
        reader,
        logger,
        maxWaitMs: this.options.fetchMaxWaitMs,
        maxBytesPerPartition: this.options.fetchMaxBytesPerPartition,
        onFetched: (info) => {
          if (this.#events.listening('fetch')) this.#events.emit('fetch', info);
        },
      },
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

  /** What the worker's membership is doing: its target, the partitions it waits for, the live workers. */
  membership(): MembershipView {
    return this.#membership.view();
  }

  /** The partitions this worker applies, with their committed positions. */
  progress(): PartitionProgress[] {
    const now = Date.now();
    return [...this.#runners.values()].map((r) => {
      const p = r.progress();
      const since = this.#fetcher.failingSince(p.topic, p.partition);
      return since === undefined ? p : { ...p, fetchFailingMs: now - since };
    });
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
      // A class handler whose binding is missing fails here, naming it, not at the first record.
      for (const topic of this.app.topics) checkHandlerResolves(this.app.handlerFor(topic)!, this.app.container);
      if (prepare) await wait.step('prepare the store', prepare);
      await wait.step('connect to Kafka', () => reader.connect());
      this.#fetchLoop = this.#fetcher.run(this.#fetchAbort.signal);
      // The first round of claims; an outage is waited out (start() of a membership may be repeated).
      await wait.step('claim partitions', () => this.#membership.start(this.#host()));
      if (this.#stopSignal.signal.aborted) return;
      this.#setState('running');
      logger.info('worker running', {
        group: this.app.group,
        membership: this.#membership.kind,
        partitions: this.progress()
          .map((p) => `${p.topic}:${p.partition}@${p.nextOffset}`)
          .join(','),
      });
      this.#maybeCaughtUp();
    } catch (e) {
      // stop() during start-up: its shutdown runs once this settles, and start() resolves stopped.
      if (this.#startAbort.signal.aborted && OncelyError.is(e, 'ABORTED')) {
        logger.info('stopped during start-up');
        return;
      }
      const error = toError(e);
      this.#logFailure('worker failed to start', error);
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

  /** How the membership reaches the runners. */
  #host(): MembershipHost {
    return {
      held: () => [...this.#runners.values()].map((r) => r.claim),
      gained: async (claim) => {
        this.#events.emit('claim', {
          topic: claim.topic,
          partition: claim.partition,
          epoch: claim.epoch,
          nextOffset: claim.nextOffset,
        });
        // A bounded run stops each partition at the high watermark of when it was claimed.
        const stopAt =
          this.options.until === 'caught-up'
            ? (await this.options.reader.highWatermarks(claim.topic, [claim.partition])).get(claim.partition)
            : undefined;
        if (this.#stopSignal.signal.aborted) {
          // Claimed while the worker began to stop: give it straight back.
          await this.options.store.release(claim).catch(() => {});
          return;
        }
        this.#addRunner(claim, stopAt);
      },
      fail: (error) => {
        void this.#fail(error);
      },
      lost: (lost) => {
        // A lost claim (another worker, or a rewind) makes its runner re-check ownership.
        const runner = this.#runners.get(`${lost.topic}:${lost.partition}`);
        if (runner && runner.claim.epoch === lost.epoch) runner.revalidate();
      },
      handOff: async (claim) => {
        const key = `${claim.topic}:${claim.partition}`;
        const runner = this.#runners.get(key);
        if (!runner || runner.claim.epoch !== claim.epoch) return undefined;
        runner.stop();
        const exit = await this.#runnerDone.get(key);
        if (this.#runners.get(key) === runner) {
          this.#runners.delete(key);
          this.#runnerDone.delete(key);
        }
        return exit === 'dropped' ? undefined : runner.claim;
      },
      released: (c, reason, released) => this.#gaveUp(c, reason, released),
    };
  }

  /**
   * A claim given up: `release` when the store released it, else the fence its release found (the
   * claim was no longer current: another worker holds the partition, or it was rewound), which
   * must not count as a release of a partition the worker no longer held.
   */
  #gaveUp(claim: Claim, reason: 'handoff' | 'stop', released: boolean): void {
    const { topic, partition, epoch } = claim;
    if (released) {
      this.#events.emit('release', { topic, partition, epoch, reason });
      return;
    }
    this.options.logger.warn(
      'release refused: the claim is no longer current (a newer epoch): another worker holds the partition now, or it was rewound',
      { topic, partition, epoch, reason },
    );
    this.#events.emit('fenced', { topic, partition, epoch, action: 'dropped', detectedBy: 'release' });
  }

  /**
   * A bounded run ends once every targeted partition is held and has either applied up to its
   * target or stopped (a record that failed for good under onExhausted 'stop-partition', a batch
   * that cannot be read): a stopped partition never catches up, so waiting for it would never end.
   * Whether the run caught up is in progress() (caughtUp, stopped), for the caller to report.
   */
  #maybeCaughtUp(): void {
    if (this.options.until !== 'caught-up' || this.#state !== 'running') return;
    const view = this.#membership.view();
    if (view.target.some((key) => !this.#runners.has(key))) return;
    const runners = [...this.#runners.values()];
    if (!runners.every((r) => r.caughtUp || r.stoppedOn !== undefined)) return;
    const stopped = runners.filter((r) => r.stoppedOn !== undefined && !r.caughtUp);
    if (stopped.length === 0)
      this.options.logger.info('caught up with the high watermarks taken when the partitions were claimed; stopping');
    else
      this.options.logger.warn('bounded run ends without catching up: partitions stopped; the others are caught up', {
        stopped: stopped.map((r) => `${r.topic}:${r.partition}@${r.stoppedOn!.offset}`).join(','),
      });
    void this.stop();
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
        if (exit === 'dropped' && this.#runners.get(key) === runner) {
          this.#runners.delete(key);
          this.#runnerDone.delete(key);
          // Lost to another worker: take it back once it is free again, if still targeted.
          this.#membership.reevaluate();
        }
        if (exit === 'caught-up') this.#maybeCaughtUp();
        return exit;
      },
      (e: unknown) => {
        // A fatal partition error (e.g. offset out of range under 'fail') fails the whole worker.
        void this.#fail(toError(e));
        return 'failed' as const;
      },
    );
    this.#runnerDone.set(key, done);
    // The fetch loop may be waiting for a partition that wants data: this one does.
    this.#fetcher.wake();
  }

  async #fail(error: Error): Promise<void> {
    if (this.#stopping) {
      if (OncelyError.is(error, 'ABORTED')) return; // cut short by the stop itself
      // A partition failed while the worker stops (a bounded run that ends on the stopped partition,
      // a drain): the stop goes on, and ends failed with the first such error, never as a clean stop.
      if (!this.#runnerError) this.#logFailure('worker failed while stopping', error);
      this.#runnerError ??= error;
      return;
    }
    this.#logFailure('worker failed', error);
    this.#stopping = this.#shutdown(error);
    await this.#stopping;
  }

  /**
   * The line about the error the worker fails with. Each failure is said in full once: an error
   * already logged (a PARTITION_STOPPED, which its partition's runner logged with what to do) is
   * named here and referred to; any other is logged here in full. Either way it leaves marked as
   * logged, so whoever ends with it (`oncely run`) does not print it a third time.
   */
  #logFailure(message: string, error: Error): void {
    const code = (error as { code?: string }).code;
    if (!wasLogged(error)) {
      this.options.logger.error(message, { error: error.message, code });
      markLogged(error);
      return;
    }
    const cause = (error.cause as { code?: unknown } | undefined)?.code;
    const said =
      error instanceof PartitionStoppedError
        ? `Partition ${error.topic}/${error.partition} stopped at offset ${error.offset}${typeof cause === 'string' ? ` (${cause})` : ''}: ` +
          'the line "partition stopped" above says why and what to do.'
        : 'the error logged above says why and what to do.';
    this.options.logger.error(message, { error: said, code });
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
    // No more claims or hand-offs; the others re-balance now. Leases are renewed until released.
    await step('leave the group', () => this.#membership.drain());
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
        (c, released) => this.#gaveUp(c, 'stop', released),
      ),
    );
    if (closeOnStop) {
      await step('close reader', () => reader.close());
      await step('close store', () => store.close());
    }
    error ??= this.#runnerError;
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
