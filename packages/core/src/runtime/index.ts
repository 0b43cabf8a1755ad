export type { DetachedRecord } from './apply-once.js';
export { applyRecordOnce } from './apply-once.js';
export type { CompiledWorkerOptions, WorkerOptions } from './options.js';
export { compileWorkerOptions } from './options.js';
export type { SignalHandling, Stoppable } from './signals.js';
export { handleSignals } from './signals.js';
export type { CommitInfo, PartitionProgress, WorkerHooks, WorkerState } from './types.js';
export { createWorker, type Worker } from './worker.js';
