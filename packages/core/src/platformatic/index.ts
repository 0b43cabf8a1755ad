export { compilePlatformaticOptions, type PlatformaticReaderOptions } from './options.js';
export { PlatformaticPartitionReader, type PlatformaticReaderState } from './reader.js';
