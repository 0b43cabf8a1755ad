import type { Logger } from '../logger.js';
import type { Worker } from './worker.js';

/**
 * First SIGTERM/SIGINT drains the worker (stop fetching, finish the in-flight transaction, release
 * claims, close); a second one aborts (in-flight transactions roll back). Returns a function that
 * removes the handlers.
 */
export function handleSignals(worker: Worker<unknown>, logger: Logger): () => void {
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
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
