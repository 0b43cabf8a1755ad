import type { RawRecord } from '../reader/types.js';

/** Anything with a `parse` that returns T or throws: a zod schema, a valibot wrapper, your own. */
export interface Schema<T> {
  parse(value: unknown): T;
}

/**
 * Turns a record's value bytes into T. `decode` throws on bad input (wrap it in CodecError or let
 * oncely do so); decoding is part of the record's processing, so a record that cannot be decoded
 * is handled by the failure policy like any other failing record.
 */
export interface Codec<T> {
  /** Shown in errors and logs ("json", "string", "raw", or yours). */
  readonly name: string;
  decode(value: Buffer | null, record: RawRecord): T;
}

/** The type a codec decodes to. */
export type CodecValue<C> = C extends Codec<infer T> ? T : never;
