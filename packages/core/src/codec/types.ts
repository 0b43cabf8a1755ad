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
  /**
   * Decode a record's value when the handler first reads `msg.value`, not before the handler runs.
   * A value the handler never reads is never decoded, so never checked: for a handler that passes
   * `msg.raw.value` on to where it is checked anyway (a jsonb column, which refuses what is not JSON
   * as a data error of the record's), or reads the values of a few records only. A value that cannot
   * be decoded throws from that read a RecordFailedError naming the record (its cause CODEC_FAILED),
   * and the failure policy handles it as an eager codec's failure: the batch's records before it
   * commit, it is dead-lettered, the rest goes on. Default false.
   */
  readonly lazy?: boolean;
}

/** The type a codec decodes to. */
export type CodecValue<C> = C extends Codec<infer T> ? T : never;
