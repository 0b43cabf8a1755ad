import type { Logger } from '../logger.js';

/** What handleSignals controls: anything with stop() (drain) and abort(). */
export interface Stoppable {
  stop(): Promise<void>;
  abort(): Promise<void>;
}

/** The installed signal handlers. */
export interface SignalHandling {
  /** Removes the handlers. */
  dispose(): void;
  /** Whether a second signal aborted the drain. */
  readonly aborted: boolean;
  /** The first signal received, if any: the worker was stopped from outside. */
  readonly received: NodeJS.Signals | undefined;
}

/**
 * First SIGTERM/SIGINT drains the worker (stop fetching, finish the in-flight transaction, release
 * claims, close); a second one aborts (in-flight transactions roll back).
 */
export function handleSignals(worker: Stoppable, logger: Logger): SignalHandling {
  let count = 0;
  let first: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    count++;
    first ??= signal;
    if (count === 1) {
      logger.info(`${signal}: draining (send it again to abort now)`);
      void worker.stop();
    } else {
      logger.warn(`${signal} again: aborting; in-flight transactions roll back`);
      void worker.abort();
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    dispose() {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
    get aborted() {
      return count > 1;
    },
    get received() {
      return first;
    },
  };
}

/** The installed process-failure handlers. */
export interface ProcessFailureHandling {
  /** Removes the handlers. */
  dispose(): void;
  /** The first unhandled rejection or uncaught exception seen, if any: the run failed. */
  readonly error: Error | undefined;
}

/**
 * Turns an unhandled rejection or an uncaught exception (a promise a handler or a listener left
 * floating, a throw from a timer) into a drain: the worker stops fetching, lets the in-flight
 * transaction finish, releases its claims and closes, instead of the process dying with its
 * partitions still claimed. The caller exits non-zero when `error` is set.
 */
export function stopOnProcessFailure(worker: Stoppable, logger: Logger): ProcessFailureHandling {
  let first: Error | undefined;
  const onFailure = (kind: string) => (e: unknown) => {
    const error = e instanceof Error ? e : new Error(String(e));
    logger.error(`${kind} (a promise or callback nobody handled, in a handler, a listener or a library); stopping the worker`, {
      error: error.message,
      stack: error.stack,
    });
    if (first) return;
    first = error;
    void worker.stop();
  };
  const onRejection = onFailure('unhandled rejection');
  const onException = onFailure('uncaught exception');
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return {
    dispose() {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    },
    get error() {
      return first;
    },
  };
}
