export type { JsonCodecOptions } from './codecs.js';
export { json, raw, string } from './codecs.js';
export type { Codec, CodecValue, Schema } from './types.js';
