export type {
  BatchRange,
  Claim,
  ClaimInput,
  DeadLetter,
  OffsetRange,
  PartitionKey,
  PartitionState,
  RunBatchOptions,
  TransactionalStore,
} from './types.js';
