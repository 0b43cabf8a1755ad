import { CodecError, toError } from '../errors.js';
import type { Codec, Schema } from './types.js';

/** Options of {@link json}. */
export interface JsonCodecOptions<T> {
  /** Largest value accepted, in bytes. Default 1 MiB (1_048_576). */
  maxBytes?: number;
  /** Validates the parsed value (e.g. a zod schema) so that `msg.value` is what the type says. */
  schema?: Schema<T>;
  /** Whether a null value (a tombstone) is passed on as null instead of failing. Default false. */
  allowNull?: boolean;
  /**
   * Parse a value when the handler first reads `msg.value` (see {@link Codec.lazy}): a handler that
   * writes `msg.raw.value` to a jsonb column saves the parse (about half of a small record's CPU)
   * and leaves the check to PostgreSQL. Default false: every value is parsed and checked before the
   * handler runs.
   */
  lazy?: boolean;
}

// JSON.parse itself never pollutes prototypes, but it creates own "__proto__" keys that a later
// Object.assign/spread into a plain object turns into a prototype change. Dropping them (and
// "constructor.prototype") at parse time makes decoded values safe to merge.
function reviver(key: string, value: unknown): unknown {
  if (key === '__proto__') return undefined;
  if (key === 'constructor' && value !== null && typeof value === 'object' && 'prototype' in value) return undefined;
  return value;
}

/** JSON values in UTF-8, parsed safely (no `__proto__` keys survive) and size-limited; optionally validated. Invalid UTF-8 fails. */
export function json<T = unknown>(options: JsonCodecOptions<T> = {}): Codec<T> {
  const maxBytes = options.maxBytes ?? 1_048_576;
  if (!Number.isInteger(maxBytes) || maxBytes <= 0)
    throw new CodecError(`json(): maxBytes must be a positive integer, got ${maxBytes}`);
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  return {
    name: 'json',
    lazy: options.lazy === true,
    decode(value, record) {
      if (value === null) {
        if (options.allowNull) return null as T;
        throw new CodecError(
          `json: record at offset ${record.offset} has a null value (a tombstone); pass json({ allowNull: true }) to hand tombstones to the handler as null`,
        );
      }
      if (value.length > maxBytes) {
        throw new CodecError(
          `json: value of ${value.length} bytes at offset ${record.offset} exceeds maxBytes ${maxBytes}; ` +
            'if records this large are valid, raise json({ maxBytes }) and requeue them (`oncely dlq requeue`)',
        );
      }
      // toString('utf8') would replace invalid bytes with U+FFFD and the handler would get a value
      // the producer never sent; a fatal TextDecoder validates and decodes in one pass (measured
      // ~7% less per 150-byte value than isUtf8 and then toString). ignoreBOM keeps a byte-order
      // mark in the text, so that JSON.parse refuses it as it did.
      let text: string;
      try {
        text = utf8.decode(value);
      } catch {
        throw new CodecError(
          `json: value at offset ${record.offset} is not valid UTF-8 (JSON text must be); ` +
            'fix the producer, or use the raw() codec for values in another encoding (`oncely dlq show` has the bytes)',
        );
      }
      let parsed: unknown;
      try {
        // The reviver costs a call per key: only pay it when a dangerous key can be there at all
        // (spelled out, or hidden behind a \u escape such as "\u005f_proto__").
        // (String checks: Buffer#includes converts its needle to bytes on every call.)
        const risky = text.includes('__proto__') || text.includes('constructor') || text.includes('\\u');
        parsed = risky ? JSON.parse(text, reviver) : JSON.parse(text);
      } catch (e) {
        throw new CodecError(
          `json: value at offset ${record.offset} is not valid JSON (${toError(e).message}); ` +
            'fix the producer, or use the string() or raw() codec for values that are not JSON (`oncely dlq show` has the bytes)',
          { cause: e },
        );
      }
      if (!options.schema) return parsed as T;
      try {
        return options.schema.parse(parsed);
      } catch (e) {
        throw new CodecError(`json: value at offset ${record.offset} does not match its schema: ${toError(e).message}`, {
          cause: e,
        });
      }
    },
  };
}

/** UTF-8 text. Invalid UTF-8 fails instead of being replaced with U+FFFD. */
export function string(options: { allowNull?: boolean } = {}): Codec<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return {
    name: 'string',
    decode(value, record) {
      if (value === null) {
        if (options.allowNull) return null as unknown as string;
        throw new CodecError(`string: record at offset ${record.offset} has a null value`);
      }
      try {
        return decoder.decode(value);
      } catch (e) {
        throw new CodecError(`string: value at offset ${record.offset} is not valid UTF-8`, { cause: e });
      }
    },
  };
}

/** The value bytes as they are (null for a tombstone). */
export function raw(): Codec<Buffer | null> {
  return { name: 'raw', decode: (value) => value };
}
