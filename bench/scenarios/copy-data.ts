/**
 * The rows of the COPY ceilings, built as COPY bytes in memory before any clock starts: the same
 * rows as the row-per-record scenarios write (topic, partition, offset, key, value), with Kafka's
 * coordinates (offsets dense per partition) and the values of data.ts.
 *
 * - text:   `topic\tpartition\toffset\tkey\tvalue\n` (the values hold no tab, newline or backslash,
 *           so nothing needs escaping); what psql's \copy reads from a file, too;
 * - binary: PostgreSQL's binary COPY format (signature, tuples of length-prefixed fields, trailer):
 *           int4 partition, int8 offset, text topic and key, jsonb value (version byte 1 + JSON text).
 *
 * Buffers of about {@link CHUNK_BYTES} bytes, so that a writer can stream them without building
 * anything while it is timed.
 */
import type { CopyFormat } from '../config.js';
import { accountOf, recordValue } from '../data.js';

export const CHUNK_BYTES = 256 * 1024;

/** The columns, in order, of the rows table (tables.ts). */
export const COPY_COLUMNS = '(topic, partition, "offset", key, value)';

const BINARY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export interface CopyRowsSpec {
  topic: string;
  partitions: number;
  records: number;
  valueBytes: number;
}

export function copyChunks(spec: CopyRowsSpec, format: CopyFormat): Buffer[] {
  const chunks: Buffer[] = [];
  let buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let at = 0;
  const flush = () => {
    if (at > 0) chunks.push(buf.subarray(0, at));
    buf = Buffer.allocUnsafe(CHUNK_BYTES);
    at = 0;
  };
  const topicBytes = Buffer.byteLength(spec.topic);
  if (format === 'binary') {
    at += BINARY_SIGNATURE.copy(buf, at);
    at = buf.writeInt32BE(0, at); // flags
    at = buf.writeInt32BE(0, at); // header extension length
  }
  const nextOffset = new Array<number>(spec.partitions).fill(0);
  for (let seq = 0; seq < spec.records; seq++) {
    const partition = seq % spec.partitions;
    const offset = nextOffset[partition]!++;
    const key = accountOf(seq);
    const value = recordValue(seq, spec.valueBytes);
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(value);
    if (format === 'text') {
      const line = `${spec.topic}\t${partition}\t${offset}\t${key}\t${value}\n`;
      if (at + Buffer.byteLength(line) > buf.length) flush();
      at += buf.write(line, at, 'utf8');
    } else {
      const size = 2 + 4 + topicBytes + 4 + 4 + 4 + 8 + 4 + keyBytes + 4 + 1 + valueBytes;
      if (at + size > buf.length) flush();
      at = buf.writeInt16BE(5, at);
      at = buf.writeInt32BE(topicBytes, at);
      at += buf.write(spec.topic, at, 'utf8');
      at = buf.writeInt32BE(4, at);
      at = buf.writeInt32BE(partition, at);
      at = buf.writeInt32BE(8, at);
      at = buf.writeInt32BE(Math.floor(offset / 2 ** 32), at);
      at = buf.writeUInt32BE(offset % 2 ** 32, at);
      at = buf.writeInt32BE(keyBytes, at);
      at += buf.write(key, at, 'utf8');
      at = buf.writeInt32BE(1 + valueBytes, at);
      at = buf.writeUInt8(1, at); // jsonb version
      at += buf.write(value, at, 'utf8');
    }
  }
  if (format === 'binary') {
    if (at + 2 > buf.length) flush();
    at = buf.writeInt16BE(-1, at);
  }
  flush();
  return chunks;
}
