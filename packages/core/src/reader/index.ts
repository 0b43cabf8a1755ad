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
