export type { DetachedRecord } from './apply-once.js';
export { applyRecordOnce } from './apply-once.js';
export type {
  CommitInfo,
  WorkerEvent,
  WorkerEventMap,
  WorkerListener,
} from './events.js';
export type { FetchInfo } from './fetcher.js';
export type { CompiledWorkerOptions, WorkerOptions } from './options.js';
export { compileWorkerOptions } from './options.js';
export type { ProcessFailureHandling, SignalHandling, Stoppable } from './signals.js';
export { handleSignals, stopOnProcessFailure } from './signals.js';
export { StartTimeoutError } from './start-wait.js';
export type { PartitionProgress, WorkerState } from './types.js';
export { createWorker, type Worker } from './worker.js';
