export { registerCompressionCodecs } from './codecs.js';
export { CompressionUnsupportedError, KafkaProtocolError, TopicNotFoundError } from './errors.js';
export { createKafkajsReader, KafkajsPartitionReader, type ReaderState } from './kafkajs-reader.js';
export { createOffsetMirror, type OffsetMirror, type OffsetMirrorOptions } from './mirror.js';
export { type CompiledReaderOptions, compileReaderOptions, type IsolationLevel, type KafkajsReaderOptions } from './options.js';
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
