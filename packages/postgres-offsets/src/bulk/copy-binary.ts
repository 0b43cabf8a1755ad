/**
 * COPY's binary format for copyRows: every value is encoded by its column's type straight into
 * Buffers, with no text in between and nothing to escape. A string into a text-like or JSON column
 * is written as UTF-8 and a Buffer (or Uint8Array) as its bytes unchanged: PostgreSQL checks the
 * encoding, and the JSON, itself.
 */

/** How a column's values are written: one per binary input function binary mode supports. */
export type BinaryKind =
  | 'text'
  | 'json'
  | 'jsonb'
  | 'bytea'
  | 'int2'
  | 'int4'
  | 'int8'
  | 'float4'
  | 'float8'
  | 'bool'
  | 'timestamp'
  | 'timestamptz'
  | 'uuid';

/** The built-in types binary mode writes, by OID (fixed for built-in types). */
export const BINARY_KINDS: ReadonlyMap<number, BinaryKind> = new Map<number, BinaryKind>([
  [16, 'bool'],
  [17, 'bytea'],
  [19, 'text'], // name
  [20, 'int8'],
  [21, 'int2'],
  [23, 'int4'],
  [25, 'text'],
  [114, 'json'],
  [700, 'float4'],
  [701, 'float8'],
  [1042, 'text'], // character (bpchar)
  [1043, 'text'], // character varying
  [1114, 'timestamp'],
  [1184, 'timestamptz'],
  [2950, 'uuid'],
  [3802, 'jsonb'],
]);

/** For the error that names an unsupported column's type. */
export const SUPPORTED_TYPES =
  'text, character varying, character, name, json, jsonb, bytea, smallint, integer, bigint, real, ' +
  'double precision, boolean, timestamp, timestamp with time zone, uuid (or a domain over one of them)';

/** A column as the encoder sees it: its name and type (format_type) for errors, and its kind. */
export interface BinaryColumn {
  readonly name: string;
  readonly type: string;
  readonly kind: BinaryKind;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const CHUNK_BYTES = 65_536;
const TWO_32 = 4_294_967_296;
/** 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix milliseconds. */
const PG_EPOCH_MS = 946_684_800_000;
const DECIMAL = /^[+-]?\d+$/;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
/** ISO 8601 date and time, to the microsecond, with an optional offset (Z, ±hh, ±hh:mm, ±hhmm). */
const ISO = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?(?:(Z)|([+-])(\d\d)(?::?(\d\d))?)?$/i;
const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;
const FLOAT4_MAX = 3.4028234663852886e38;

/** JSON.stringify's replacer for values written as JSON: bigints as strings (both formats). */
export function bigintJson(_k: string, x: unknown): unknown {
  return typeof x === 'bigint' ? x.toString() : x;
}

/** A value as an error message shows it: short, and typed where a bare print would mislead. */
function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) return `Date(${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()})`;
  return typeof v === 'object' ? (v?.constructor?.name ?? 'object') : typeof v;
}

/** Appends to ~64 KiB Buffers; a value larger than that gets a Buffer of its own size. */
class Chunks {
  readonly full: Buffer[] = [];
  buf = Buffer.allocUnsafe(CHUNK_BYTES);
  at = 0;

  /** Makes room for n more bytes. */
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    if (this.at > 0) this.full.push(this.buf.subarray(0, this.at));
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, n));
    this.at = 0;
  }

  /** A field of UTF-8 text, after an optional version byte (jsonb's 1). */
  string(s: string, version: boolean): void {
    const head = version ? 5 : 4;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: when that fits, write in place and set the
    // length after, without measuring the string first.
    if (this.at + head + s.length * 3 > this.buf.length) this.room(head + Buffer.byteLength(s));
    const start = this.at;
    if (version) this.buf[start + 4] = 1;
    const n = this.buf.write(s, start + head, 'utf8');
    this.buf.writeInt32BE(n + head - 4, start);
    this.at = start + head + n;
  }

  /** A field of bytes, unchanged, after an optional version byte. */
  bytes(b: Uint8Array, version: boolean): void {
    const head = version ? 5 : 4;
    this.room(head + b.length);
    this.buf.writeInt32BE(b.length + head - 4, this.at);
    if (version) this.buf[this.at + 4] = 1;
    this.buf.set(b, this.at + head);
    this.at += head + b.length;
  }

  /** An 8-byte big-endian integer from a safe integer. */
  int64(n: number): void {
    const hi = Math.floor(n / TWO_32);
    this.buf.writeInt32BE(hi, this.at);
    this.buf.writeUInt32BE(n - hi * TWO_32, this.at + 4);
    this.at += 8;
  }

  /** An 8-byte field: a safe integer, or a bigint known to be in int8's range. */
  int8Field(v: number | bigint): void {
    this.room(12);
    this.at = this.buf.writeInt32BE(8, this.at);
    if (typeof v === 'number') this.int64(v);
    else if (v >= -Number.MAX_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER) this.int64(Number(v));
    else this.at = this.buf.writeBigInt64BE(v, this.at);
  }

  /** The Buffers written so far, the last one included. */
  done(): Buffer[] {
    if (this.at > 0) this.full.push(this.buf.subarray(0, this.at));
    return this.full;
  }
}

/**
 * Encodes rows as one binary COPY stream (signature, header, one tuple per row, trailer), in
 * Buffers of about 64 KiB. Throws a TypeError naming the row and column of the first value it
 * cannot encode, before anything is sent: rows must have one value per column (copyRows checks).
 */
export function encodeBinaryRows(columns: readonly BinaryColumn[], rows: readonly (readonly unknown[])[]): Buffer[] {
  const out = new Chunks();
  out.room(19);
  out.at += SIGNATURE.copy(out.buf, out.at);
  out.at = out.buf.writeInt32BE(0, out.at); // flags
  out.at = out.buf.writeInt32BE(0, out.at); // header extension length
  const count = columns.length;
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    out.room(2);
    out.at = out.buf.writeInt16BE(count, out.at);
    for (let i = 0; i < count; i++) field(out, columns[i]!, row[i], r);
  }
  out.room(2);
  out.at = out.buf.writeInt16BE(-1, out.at);
  return out.done();
}

function refused(column: BinaryColumn, row: number, v: unknown, problem: string): TypeError {
  return new TypeError(`copyRows: row ${row}, column "${column.name}" (${column.type}): ${shown(v)} ${problem}.`);
}

function field(out: Chunks, column: BinaryColumn, v: unknown, row: number): void {
  if (v === null || v === undefined) {
    out.room(4);
    out.at = out.buf.writeInt32BE(-1, out.at);
    return;
  }
  switch (column.kind) {
    case 'text':
    case 'json':
    case 'jsonb': {
      const version = column.kind === 'jsonb';
      if (typeof v === 'string') out.string(v, version);
      else if (v instanceof Uint8Array) out.bytes(v, version);
      // As the text format writes them: numbers and bigints plainly, Dates in ISO 8601 (a JSON
      // string in a JSON column), anything else as JSON with bigints as strings.
      else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') out.string(String(v), version);
      else if (v instanceof Date && column.kind === 'text') out.string(v.toISOString(), false);
      else {
        const json = JSON.stringify(v, bigintJson);
        if (json === undefined) throw refused(column, row, v, 'has no JSON form');
        out.string(json, version);
      }
      return;
    }
    case 'bytea':
      if (!(v instanceof Uint8Array)) {
        throw refused(column, row, v, 'is not a Buffer or Uint8Array (binary format writes bytea from bytes only)');
      }
      out.bytes(v, false);
      return;
    case 'int2':
    case 'int4': {
      const n = typeof v === 'number' ? v : typeof v === 'bigint' || (typeof v === 'string' && DECIMAL.test(v)) ? Number(v) : NaN;
      const max = column.kind === 'int2' ? 32_767 : 2_147_483_647;
      if (!Number.isInteger(n)) throw refused(column, row, v, 'is not an integer (a number, bigint or decimal string)');
      if (n < -max - 1 || n > max) throw refused(column, row, v, `is out of range (${-max - 1} to ${max})`);
      out.room(8);
      out.at = out.buf.writeInt32BE(column.kind === 'int2' ? 2 : 4, out.at);
      out.at = column.kind === 'int2' ? out.buf.writeInt16BE(n, out.at) : out.buf.writeInt32BE(n, out.at);
      return;
    }
    case 'int8': {
      if (typeof v === 'number' && !Number.isSafeInteger(v)) {
        throw refused(column, row, v, 'is not a safe integer (pass a bigint or a decimal string)');
      }
      const n =
        typeof v === 'number' || typeof v === 'bigint' ? v : typeof v === 'string' && DECIMAL.test(v) ? BigInt(v) : undefined;
      if (n === undefined) throw refused(column, row, v, 'is not an integer (a number, bigint or decimal string)');
      if (typeof n === 'bigint' && (n < INT8_MIN || n > INT8_MAX)) throw refused(column, row, v, 'is out of range for bigint');
      out.int8Field(n);
      return;
    }
    case 'float4':
    case 'float8': {
      if (typeof v !== 'number') throw refused(column, row, v, 'is not a number');
      if (column.kind === 'float4' && Math.abs(v) > FLOAT4_MAX && Number.isFinite(v))
        throw refused(column, row, v, 'is out of range for real');
      out.room(12);
      if (column.kind === 'float4') {
        out.at = out.buf.writeInt32BE(4, out.at);
        out.at = out.buf.writeFloatBE(v, out.at);
      } else {
        out.at = out.buf.writeInt32BE(8, out.at);
        out.at = out.buf.writeDoubleBE(v, out.at);
      }
      return;
    }
    case 'bool':
      if (typeof v !== 'boolean') throw refused(column, row, v, 'is not a boolean');
      out.room(5);
      out.at = out.buf.writeInt32BE(1, out.at);
      out.buf[out.at++] = v ? 1 : 0;
      return;
    case 'timestamp':
    case 'timestamptz': {
      const us = microseconds(v, column.kind === 'timestamptz');
      if (typeof us === 'string') throw refused(column, row, v, us);
      out.int8Field(us);
      return;
    }
    case 'uuid': {
      if (v instanceof Uint8Array && v.length === 16) out.bytes(v, false);
      else if (typeof v === 'string' && UUID.test(v)) {
        out.room(20);
        out.at = out.buf.writeInt32BE(16, out.at);
        out.at += out.buf.write(v.length === 32 ? v : v.replaceAll('-', ''), out.at, 16, 'hex');
      } else throw refused(column, row, v, 'is not a UUID (8-4-4-4-12 hex digits, or 16 bytes)');
      return;
    }
  }
}

/**
 * Microseconds since 2000-01-01 (what both timestamp types hold), or why not. A Date is an
 * instant: into timestamptz as itself, into timestamp as its UTC wall-clock time (what the text
 * format writes: its ISO string, whose Z PostgreSQL ignores there). A string is ISO 8601 to the
 * microsecond; binary format cannot apply the session's TimeZone, so timestamptz needs its offset
 * and timestamp, a wall-clock time, must have none.
 */
function microseconds(v: unknown, zoned: boolean): number | bigint | string {
  let ms: number;
  let us = 0;
  if (v instanceof Date) {
    ms = v.getTime();
    if (Number.isNaN(ms)) return 'is an invalid Date';
  } else if (typeof v === 'string') {
    const m = ISO.exec(v);
    if (!m) return 'is not a Date or an ISO 8601 date and time';
    const [, y, mo, d, h, mi, s, frac, z, sign, oh, om] = m;
    if ((z !== undefined || sign !== undefined) !== zoned) {
      return zoned
        ? 'has no offset (Z or ±hh:mm): binary format cannot apply the session TimeZone'
        : 'has an offset, which a timestamp without time zone does not keep';
    }
    const t = new Date(0);
    t.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
    t.setUTCHours(Number(h), Number(mi), Number(s ?? 0));
    if (
      t.getUTCMonth() !== Number(mo) - 1 ||
      t.getUTCDate() !== Number(d) ||
      Number(h) > 23 ||
      Number(mi) > 59 ||
      Number(s ?? 0) > 59
    ) {
      return 'is not a valid date and time';
    }
    const offset = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om ?? 0)) * 60_000;
    ms = t.getTime() - offset;
    us = frac === undefined ? 0 : Number(frac.padEnd(6, '0'));
  } else {
    return 'is not a Date or an ISO 8601 string';
  }
  const total = (ms - PG_EPOCH_MS) * 1000 + us;
  return Number.isSafeInteger(total) ? total : BigInt(ms - PG_EPOCH_MS) * 1000n + BigInt(us);
}
