export { RecordFailedError } from './handler-invoker.js';
export type { CompiledWorkerOptions, WorkerOptions } from './options.js';
export { compileWorkerOptions } from './options.js';
export type { SignalHandling, Stoppable } from './signals.js';
export { handleSignals } from './signals.js';
export type { CommitInfo, PartitionProgress, WorkerHooks, WorkerState } from './types.js';
export { createWorker, Worker } from './worker.js';
