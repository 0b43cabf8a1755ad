import { describe, expect, it } from 'vitest';
import { CodecError } from '../errors.js';
import type { RawRecord } from '../reader/types.js';
import { json, raw, string } from './codecs.js';

const rec = (value: Buffer | null): RawRecord => ({ offset: 7n, timestamp: 0, key: null, value, headers: [] });

describe('json codec', () => {
  it('parses values', () => {
    expect(json<{ a: number }>().decode(Buffer.from('{"a":1}'), rec(null))).toEqual({ a: 1 });
  });

  it('drops __proto__ keys so a later merge cannot pollute prototypes', () => {
    const v = json<Record<string, unknown>>().decode(
      Buffer.from('{"__proto__":{"polluted":true},"a":{"__proto__":{"x":1}}}'),
      rec(null),
    );
    const merged = Object.assign({}, v);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((merged as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(v, '__proto__')).toBe(false);
    expect(Object.hasOwn(v.a as object, '__proto__')).toBe(false);
    // The same key hidden behind a unicode escape is dropped too.
    const escaped = json<Record<string, unknown>>().decode(Buffer.from('{"\\u005f_proto__":{"polluted":true},"b":1}'), rec(null));
    expect(Object.hasOwn(escaped, '__proto__')).toBe(false);
    expect(escaped.b).toBe(1);
  });

  it('rejects values over maxBytes, invalid JSON and tombstones with CodecError naming the offset', () => {
    expect(() => json({ maxBytes: 4 }).decode(Buffer.from('"hello"'), rec(null))).toThrow(/exceeds maxBytes 4/);
    expect(() => json().decode(Buffer.from('{nope'), rec(null))).toThrow(CodecError);
    expect(() => json().decode(null, rec(null))).toThrow(/offset 7 has a null value/);
    expect(json({ allowNull: true }).decode(null, rec(null))).toBeNull();
  });

  it('rejects invalid UTF-8 (a Latin-1 byte, an overlong form, a lone surrogate, a cut sequence) instead of replacing it with U+FFFD', () => {
    const bad = [
      [0xe9], // Latin-1 é
      [0xc0, 0xaf], // overlong "/"
      [0xed, 0xa0, 0x80], // UTF-16 surrogate encoded as UTF-8
      [0xe2, 0x82], // cut short
    ];
    for (const bytes of bad) {
      const value = Buffer.concat([Buffer.from('{"s":"'), Buffer.from(bytes), Buffer.from('"}')]);
      expect(() => json().decode(value, rec(value))).toThrow(/offset 7 is not valid UTF-8/);
      expect(() => json().decode(value, rec(value))).toThrow(CodecError);
    }
    expect(json<{ s: string }>().decode(Buffer.from('{"s":"café €𝄞"}'), rec(null)).s).toBe('café €𝄞');
  });

  it('keeps a byte-order mark in the text, so a value that starts with one is not JSON', () => {
    const value = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]);
    expect(() => json().decode(value, rec(value))).toThrow(/offset 7 is not valid JSON/);
  });

  it('validates with a schema', () => {
    const schema = {
      parse(v: unknown) {
        if (typeof (v as { n?: unknown }).n !== 'number') throw new Error('n must be a number');
        return v as { n: number };
      },
    };
    expect(json({ schema }).decode(Buffer.from('{"n":2}'), rec(null)).n).toBe(2);
    expect(() => json({ schema }).decode(Buffer.from('{"n":"2"}'), rec(null))).toThrow(
      /does not match its schema: n must be a number/,
    );
  });
});

describe('string and raw codecs', () => {
  it('decodes UTF-8 strictly', () => {
    expect(string().decode(Buffer.from('héllo'), rec(null))).toBe('héllo');
    expect(() => string().decode(Buffer.from([0xff, 0xfe]), rec(null))).toThrow(/not valid UTF-8/);
  });

  it('passes bytes through', () => {
    const b = Buffer.from([1, 2, 3]);
    expect(raw().decode(b, rec(b))).toBe(b);
    expect(raw().decode(null, rec(null))).toBeNull();
  });
});
