import { describe, expect, it } from 'vitest';
import { type BinaryColumn, type BinaryKind, encodeBinaryRows } from './copy-binary.js';

const col = (kind: BinaryKind, name = 'c'): BinaryColumn => ({ name, type: kind, kind });

/** The fields of each tuple of a binary COPY stream (null for NULL), checking its framing. */
function tuples(chunks: Buffer[]): (Buffer | null)[][] {
  const b = Buffer.concat(chunks);
  expect(b.subarray(0, 11)).toEqual(Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'));
  expect(b.readInt32BE(11)).toBe(0);
  expect(b.readInt32BE(15)).toBe(0);
  let at = 19;
  const out: (Buffer | null)[][] = [];
  for (;;) {
    const n = b.readInt16BE(at);
    at += 2;
    if (n === -1) break;
    const row: (Buffer | null)[] = [];
    for (let i = 0; i < n; i++) {
      const len = b.readInt32BE(at);
      at += 4;
      row.push(len === -1 ? null : b.subarray(at, at + len));
      if (len > 0) at += len;
    }
    out.push(row);
  }
  expect(at).toBe(b.length);
  return out;
}

/** The one field of a one-column, one-row stream. */
function one(kind: BinaryKind, v: unknown): Buffer | null {
  return tuples(encodeBinaryRows([col(kind)], [[v]]))[0]![0]!;
}

function error(kind: BinaryKind, v: unknown): string {
  try {
    encodeBinaryRows(
      [col('int4', 'id'), col(kind, 'value')],
      [
        [1, null],
        [2, v],
      ],
    );
  } catch (e) {
    expect(e).toBeInstanceOf(TypeError);
    return (e as Error).message;
  }
  throw new Error(`${String(v)} was encoded`);
}

describe('encodeBinaryRows', () => {
  it('frames rows: a field count per tuple, -1 for NULL, and the trailer', () => {
    const rows = tuples(
      encodeBinaryRows(
        [col('int4'), col('text'), col('bytea')],
        [
          [1, null, undefined],
          [2, 'x', Buffer.alloc(0)],
        ],
      ),
    );
    expect(rows).toEqual([
      [Buffer.from([0, 0, 0, 1]), null, null],
      [Buffer.from([0, 0, 0, 2]), Buffer.from('x'), Buffer.alloc(0)],
    ]);
    expect(tuples(encodeBinaryRows([col('text')], []))).toEqual([]);
  });

  it('writes text as UTF-8 with nothing escaped, and Buffers and Uint8Arrays as they are', () => {
    const s = 'tab\t newline\n return\r back\\slash \\N é 😀';
    expect(one('text', s)).toEqual(Buffer.from(s));
    expect(one('text', Buffer.from([0xff, 0x00]))).toEqual(Buffer.from([0xff, 0x00]));
    expect(one('json', new Uint8Array([0x7b, 0x7d]))).toEqual(Buffer.from('{}'));
    expect(one('text', 42)).toEqual(Buffer.from('42'));
    expect(one('text', 9007199254740993n)).toEqual(Buffer.from('9007199254740993'));
    expect(one('text', new Date('2026-01-02T03:04:05.678Z'))).toEqual(Buffer.from('2026-01-02T03:04:05.678Z'));
    expect(one('text', { a: 1n })).toEqual(Buffer.from('{"a":"1"}'));
    expect(one('bytea', Buffer.from([1, 2, 3]))).toEqual(Buffer.from([1, 2, 3]));
  });

  it('writes jsonb with its version byte, objects as JSON with bigints as strings', () => {
    expect(one('jsonb', '{"a":1}')).toEqual(Buffer.from('\x01{"a":1}', 'latin1'));
    expect(one('jsonb', Buffer.from('[1]'))).toEqual(Buffer.from('\x01[1]', 'latin1'));
    expect(one('jsonb', { big: 2n ** 64n, list: [true, null] })).toEqual(
      Buffer.from('\x01{"big":"18446744073709551616","list":[true,null]}', 'latin1'),
    );
    expect(one('json', [1, 'x'])).toEqual(Buffer.from('[1,"x"]'));
    expect(one('json', 5)).toEqual(Buffer.from('5'));
    expect(one('json', new Date('2026-01-02T00:00:00.000Z'))).toEqual(Buffer.from('"2026-01-02T00:00:00.000Z"'));
  });

  it('writes a value larger than a chunk, and many rows across chunks', () => {
    const big = 'é'.repeat(100_000);
    const rows = Array.from({ length: 3000 }, (_, i) => [i, i === 1500 ? big : `row ${i} ${'x'.repeat(i % 50)}`]);
    const chunks = encodeBinaryRows([col('int8'), col('text')], rows);
    expect(chunks.length).toBeGreaterThan(2);
    const decoded = tuples(chunks);
    expect(decoded.length).toBe(3000);
    expect(decoded[1500]![1]!.toString('utf8')).toBe(big);
    expect(decoded.map((r) => Number(r[0]!.readBigInt64BE(0)))).toEqual(rows.map((r) => r[0]));
    expect(decoded[2999]![1]!.toString('utf8')).toBe(rows[2999]![1]);
  });

  it('writes integers big-endian from numbers, bigints and decimal strings', () => {
    expect(one('int2', -2)).toEqual(Buffer.from([0xff, 0xfe]));
    expect(one('int2', '32767')).toEqual(Buffer.from([0x7f, 0xff]));
    expect(one('int4', 7n)).toEqual(Buffer.from([0, 0, 0, 7]));
    expect(one('int4', -2147483648)).toEqual(Buffer.from([0x80, 0, 0, 0]));
    const int8 = (v: unknown) => one('int8', v)!.readBigInt64BE(0);
    expect(int8(-1)).toBe(-1n);
    expect(int8(Number.MAX_SAFE_INTEGER)).toBe(2n ** 53n - 1n);
    expect(int8(-Number.MAX_SAFE_INTEGER)).toBe(-(2n ** 53n) + 1n);
    expect(int8(2n ** 63n - 1n)).toBe(2n ** 63n - 1n);
    expect(int8(-(2n ** 63n))).toBe(-(2n ** 63n));
    expect(int8(12345678901234567n)).toBe(12345678901234567n);
    expect(int8('-9223372036854775808')).toBe(-(2n ** 63n));
    expect(int8('+42')).toBe(42n);
  });

  it('writes floats, booleans and UUIDs', () => {
    expect(one('float8', 0.1)!.readDoubleBE(0)).toBe(0.1);
    expect(one('float8', Number.NaN)!.readDoubleBE(0)).toBeNaN();
    expect(one('float4', 1.5)!.readFloatBE(0)).toBe(1.5);
    expect(one('float4', Number.POSITIVE_INFINITY)!.readFloatBE(0)).toBe(Number.POSITIVE_INFINITY);
    expect(one('bool', true)).toEqual(Buffer.from([1]));
    expect(one('bool', false)).toEqual(Buffer.from([0]));
    const hex = '0a1b2c3d4e5f60718293a4b5c6d7e8f9';
    expect(one('uuid', '0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9')).toEqual(Buffer.from(hex, 'hex'));
    expect(one('uuid', hex.toUpperCase())).toEqual(Buffer.from(hex, 'hex'));
    expect(one('uuid', Buffer.from(hex, 'hex'))).toEqual(Buffer.from(hex, 'hex'));
  });

  it('writes timestamps as microseconds since 2000-01-01', () => {
    const us = (kind: BinaryKind, v: unknown) => one(kind, v)!.readBigInt64BE(0);
    expect(us('timestamptz', new Date('2000-01-01T00:00:00Z'))).toBe(0n);
    expect(us('timestamptz', new Date('1999-12-31T23:59:59.999Z'))).toBe(-1000n);
    expect(us('timestamptz', '2000-01-01T00:00:00.000001Z')).toBe(1n);
    expect(us('timestamptz', '2000-01-01 02:00:00.5+02:00')).toBe(500_000n);
    expect(us('timestamptz', '2000-01-01T00:00:00-0130')).toBe(5_400_000_000n);
    expect(us('timestamptz', '2000-01-01T00:00-01')).toBe(3_600_000_000n);
    // A Date into timestamp is its UTC wall-clock time; a string is the wall-clock time written.
    expect(us('timestamp', new Date('2000-01-02T00:00:00Z'))).toBe(86_400_000_000n);
    expect(us('timestamp', '2000-01-01T00:00:01.25')).toBe(1_250_000n);
    expect(us('timestamp', '0001-01-01T00:00:00')).toBe(-63082281600000000n);
    // Beyond 2^53 microseconds (year 2285), exact through bigint.
    expect(us('timestamptz', '9999-12-31T23:59:59.999999Z')).toBe(252455615999999999n);
  });

  it('refuses a value its column cannot take, naming the row and the column', () => {
    expect(error('int4', 1.5)).toBe(
      'copyRows: row 1, column "value" (int4): 1.5 is not an integer (a number, bigint or decimal string).',
    );
    expect(error('int4', 2 ** 31)).toContain('out of range (-2147483648 to 2147483647)');
    expect(error('int2', -32769n)).toContain('-32769n is out of range');
    expect(error('int4', '12x')).toContain('"12x" is not an integer');
    expect(error('int4', true)).toContain('true is not an integer');
    expect(error('int8', 2 ** 53)).toContain('not a safe integer');
    expect(error('int8', 2n ** 63n)).toContain('out of range for bigint');
    expect(error('int8', '1e3')).toContain('not an integer');
    expect(error('float8', '1.5')).toContain('is not a number');
    expect(error('float4', 1e39)).toContain('out of range for real');
    expect(error('bool', 'true')).toContain('is not a boolean');
    expect(error('bytea', 'AQI=')).toContain('not a Buffer or Uint8Array');
    expect(error('uuid', 'not-a-uuid')).toContain('is not a UUID');
    expect(error('uuid', new Uint8Array(15))).toContain('Uint8Array is not a UUID');
    expect(error('text', Symbol('s'))).toContain('has no JSON form');
    expect(error('timestamptz', new Date(Number.NaN))).toContain('Date(invalid) is an invalid Date');
    expect(error('timestamptz', '2026-01-02T03:04:05')).toContain('has no offset');
    expect(error('timestamp', '2026-01-02T03:04:05Z')).toContain('has an offset');
    expect(error('timestamptz', '2026-02-30T00:00:00Z')).toContain('is not a valid date and time');
    expect(error('timestamptz', '2026-01-02T24:00:00Z')).toContain('is not a valid date and time');
    expect(error('timestamp', '2026-01-02')).toContain('is not a Date or an ISO 8601 date and time');
    expect(error('timestamp', 1_700_000_000_000)).toContain('is not a Date or an ISO 8601 string');
    expect(error('bool', 'x'.repeat(100))).toContain(`"${'x'.repeat(40)}…"`);
  });
});
