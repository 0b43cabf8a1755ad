export type {
  FetchedRecords,
  FetchOptions,
  FetchOutOfRange,
  FetchRequest,
  FetchResult,
  OffsetSpec,
  PartitionReader,
  RawRecord,
} from './types.js';
