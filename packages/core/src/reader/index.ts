export type {
  FetchedRecords,
  FetchOptions,
  FetchOutOfRange,
  FetchRequest,
  FetchResult,
  OffsetSpec,
  PartitionReader,
  RawRecord,
  TopicPartition,
} from './types.js';
export { recordSize } from './types.js';
