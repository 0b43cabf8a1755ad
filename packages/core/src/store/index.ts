export type {
  BatchRange,
  Claim,
  ClaimInput,
  CrashEvidence,
  DeadLetter,
  LiveWorker,
  OffsetRange,
  PartitionKey,
  PartitionState,
  RunBatchOptions,
  TransactionalStore,
  WorkerHeartbeat,
} from './types.js';
