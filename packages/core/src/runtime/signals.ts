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
}

/**
 * First SIGTERM/SIGINT drains the worker (stop fetching, finish the in-flight transaction, release
 * claims, close); a second one aborts (in-flight transactions roll back).
 */
export function handleSignals(worker: Stoppable, logger: Logger): SignalHandling {
  let count = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    count++;
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
  };
}
