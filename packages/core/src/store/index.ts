export type {
  BatchRange,
  Claim,
  ClaimInput,
  DeadLetter,
  PartitionKey,
  PartitionState,
  RunBatchOptions,
  TransactionalStore,
} from './types.js';
