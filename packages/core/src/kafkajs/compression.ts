/**
 * Compression codecs for record batches. gzip is built into kafkajs; snappy, lz4 and zstd are
 * registered here, once, into kafkajs's process-wide `CompressionCodecs` (so a kafkajs producer in
 * the same process can use them too), each from a maintained npm package that needs no compiler:
 *
 * - snappy: `kafkajs-snappy` (pure JS, handles the xerial framing Java producers write)
 * - lz4: `lz4-napi` `decompressFrame` (prebuilt binaries shipped as npm packages; Kafka writes the LZ4 frame format)
 * - zstd: `fzstd` (pure JS, decompression only: the reader never compresses)
 *
 * A codec whose package fails to load (an unusual platform without an lz4-napi binary) stays
 * unregistered and a batch that needs it fails with CompressionUnsupportedError naming the fix.
 */
import { createRequire } from 'node:module';
// kafkajs is CommonJS and Node's ESM loader cannot see CompressionCodecs as a named export.
import kafkajs from 'kafkajs';
import { toError } from '../errors.js';
import { CompressionUnsupportedError } from './errors.js';

const require = createRequire(import.meta.url);
const { CompressionCodecs, CompressionTypes } = kafkajs;

/** kafkajs's codec shape: compress takes a kafkajs Encoder, decompress a Buffer. */
interface KafkajsCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

type CodecFactory = () => KafkajsCodec;

const codecTable = CompressionCodecs as unknown as Record<number, CodecFactory | undefined>;

const names: Record<number, string> = {
  [CompressionTypes.GZIP]: 'gzip',
  [CompressionTypes.Snappy]: 'snappy',
  [CompressionTypes.LZ4]: 'lz4',
  [CompressionTypes.ZSTD]: 'zstd',
};

const installHints: Record<number, string> = {
  [CompressionTypes.Snappy]: 'install kafkajs-snappy (npm i kafkajs-snappy) next to @oncely/core.',
  [CompressionTypes.LZ4]: 'install lz4-napi with the prebuilt binary for this platform (npm i lz4-napi).',
  [CompressionTypes.ZSTD]: 'install fzstd (npm i fzstd) next to @oncely/core.',
};

/** Why a codec could not be registered, for the error a fetch raises when it meets that codec. */
const loadFailures = new Map<number, Error>();

function isUsable(type: number): boolean {
  const factory = codecTable[type];
  if (!factory) return false;
  try {
    // kafkajs's placeholders throw KafkaJSNotImplemented when called.
    factory();
    return true;
  } catch {
    return false;
  }
}

function register(type: number, load: () => KafkajsCodec): void {
  if (isUsable(type)) return; // the application registered its own codec: keep it
  try {
    const codec = load();
    codecTable[type] = () => codec;
  } catch (e) {
    loadFailures.set(type, toError(e));
  }
}

let registered = false;

/** Registers the snappy, lz4 and zstd codecs into kafkajs where usable. Idempotent. */
export function registerCompressionCodecs(): void {
  if (registered) return;
  registered = true;
  register(CompressionTypes.Snappy, () => (require('kafkajs-snappy') as () => KafkajsCodec)());
  register(CompressionTypes.LZ4, () => {
    const lz4 = require('lz4-napi') as { decompressFrame(b: Buffer): Promise<Buffer>; compressFrame(b: Buffer): Promise<Buffer> };
    return {
      compress: (encoder) => lz4.compressFrame(encoder.buffer),
      decompress: (buffer) => lz4.decompressFrame(buffer),
    };
  });
  register(CompressionTypes.ZSTD, () => {
    const fzstd = require('fzstd') as { decompress(b: Uint8Array): Uint8Array };
    return {
      compress: async () => {
        throw new CompressionUnsupportedError(
          'zstd',
          'oncely registers zstd for reading only; a zstd producer needs its own codec.',
        );
      },
      decompress: async (buffer) => {
        const out = fzstd.decompress(buffer);
        return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      },
    };
  });
}

/** The decompressor for a record batch's codec id (attributes & 7), or CompressionUnsupportedError. */
export function decompressorFor(type: number): (buffer: Buffer) => Promise<Buffer> {
  const name = names[type] ?? `codec #${type}`;
  const factory = codecTable[type];
  let codec: KafkajsCodec | undefined;
  let failure: Error | undefined;
  try {
    codec = factory?.();
  } catch (e) {
    failure = toError(e);
  }
  if (!codec) {
    const hint = installHints[type] ?? 'this codec is not defined by Kafka; the batch is corrupt or from a newer Kafka.';
    throw new CompressionUnsupportedError(name, hint, { cause: loadFailures.get(type) ?? failure });
  }
  const c = codec;
  return async (buffer) => {
    try {
      return await c.decompress(buffer);
    } catch (e) {
      const err = toError(e);
      if (err.name === 'KafkaJSNotImplemented') {
        throw new CompressionUnsupportedError(name, installHints[type] ?? '', { cause: err });
      }
      throw err;
    }
  };
}

/** A codec id's name for messages. */
export function codecName(type: number): string {
  return names[type] ?? `codec #${type}`;
}
