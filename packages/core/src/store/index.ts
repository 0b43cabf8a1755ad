export type {
  BatchRange,
  Claim,
  ClaimInput,
  DeadLetter,
  LiveWorker,
  OffsetRange,
  PartitionKey,
  PartitionState,
  RunBatchOptions,
  TransactionalStore,
  WorkerHeartbeat,
} from './types.js';
