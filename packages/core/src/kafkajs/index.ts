export { registerCompressionCodecs } from './compression.js';
export {
  CompressionUnsupportedError,
  CorruptRecordBatchError,
  KafkaAuthenticationError,
  KafkaProtocolError,
  TopicNotFoundError,
  UnsupportedMessageFormatError,
} from './errors.js';
export { type CompiledReaderOptions, compileReaderOptions, type IsolationLevel, type KafkajsReaderOptions } from './options.js';
export { KafkajsPartitionReader, type ReaderState } from './reader.js';
