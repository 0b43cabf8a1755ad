export type { MemoryLogEntry } from './memory-store.js';
export { MemoryStore, MemoryTx } from './memory-store.js';
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
