import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CorruptRecordBatchError, UnsupportedMessageFormatError } from './errors.js';
import { decodePartitionRecords } from './wire.js';

const require = createRequire(import.meta.url);

// kafkajs's own encoders write the batches: the decoder is checked against an independent writer.
type Long = { fromValue(v: number | string): unknown; fromNumber(v: number): unknown };
const Long = require('kafkajs/src/utils/long') as Long;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (args: Record<string, unknown>) => Promise<{ buffer: Buffer }>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (args: Record<string, unknown>) => unknown;

interface Spec {
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | Buffer[]>;
}

async function batch(firstOffset: bigint, firstTimestamp: number, records: Spec[]): Promise<Buffer> {
  const encoded = await RecordBatch({
    firstOffset: Long.fromValue(firstOffset.toString()),
    firstTimestamp,
    maxTimestamp: firstTimestamp + Math.max(0, ...records.map((r) => r.timestampDelta)),
    lastOffsetDelta: Math.max(...records.map((r) => r.offsetDelta)),
    records: records.map((r) => Record({ ...r, timestampDelta: Long.fromNumber(r.timestampDelta) })),
  });
  return encoded.buffer;
}

describe('decodePartitionRecords', () => {
  it('decodes varints of every length, negative deltas, nulls, big values and repeated headers', async () => {
    const big = Buffer.alloc(70_000, 7); // a 3-byte length varint
    const specs: Spec[] = [
      { offsetDelta: 0, timestampDelta: 0, key: Buffer.from('k0'), value: Buffer.from('v0') },
      { offsetDelta: 1, timestampDelta: -1, key: null, value: Buffer.alloc(0) },
      { offsetDelta: 2, timestampDelta: 63, key: Buffer.alloc(200, 1), value: null }, // 2-byte length
      { offsetDelta: 3, timestampDelta: -64, key: Buffer.from('k3'), value: big },
      {
        offsetDelta: 4,
        timestampDelta: 2 ** 40 + 3, // a 6-byte varlong
        key: Buffer.from('k4'),
        value: Buffer.from('v4'),
        headers: { a: [Buffer.from('1'), Buffer.from('2')], b: Buffer.from('x') },
      },
      { offsetDelta: 300, timestampDelta: -(2 ** 45), key: Buffer.from('k5'), value: Buffer.from('v5') }, // 7 bytes, negative
    ];
    const first = 1_700_000_000_000 * 1000; // far in the future: the 9-byte varlong below stays a valid timestamp
    specs.push({ offsetDelta: 301, timestampDelta: -(2 ** 60), key: null, value: Buffer.from('v6') }); // 9-byte varlong
    const buf = await batch(5_000_000_000n, first, specs);
    const { records, nextOffset } = await decodePartitionRecords(buf, 0n, null, false);
    expect(nextOffset).toBe(5_000_000_000n + 302n);
    expect(records.map((r) => r.offset)).toEqual(specs.map((s) => 5_000_000_000n + BigInt(s.offsetDelta)));
    expect(records.map((r) => r.timestamp)).toEqual(specs.map((s) => Number(BigInt(first) + BigInt(s.timestampDelta))));
    expect(records.map((r) => r.key)).toEqual(specs.map((s) => s.key));
    expect(records.map((r) => r.value)).toEqual(specs.map((s) => s.value));
    expect(records[4]!.headers).toEqual([
      ['a', Buffer.from('1')],
      ['a', Buffer.from('2')],
      ['b', Buffer.from('x')],
    ]);
  });

  it('skips records before the fetch offset inside a batch', async () => {
    const specs: Spec[] = [0, 1, 2, 3].map((i) => ({
      offsetDelta: i,
      timestampDelta: i,
      key: null,
      value: Buffer.from(`v${i}`),
    }));
    const buf = await batch(10n, 1_000, specs);
    const { records, nextOffset } = await decodePartitionRecords(buf, 12n, null, false);
    expect(records.map((r) => [r.offset, r.value?.toString()])).toEqual([
      [12n, 'v2'],
      [13n, 'v3'],
    ]);
    expect(nextOffset).toBe(14n);
  });

  it('returns buffers that do not share memory with the fetch response', async () => {
    const buf = await batch(0n, 1_000, [
      { offsetDelta: 0, timestampDelta: 0, key: Buffer.from('key'), value: Buffer.from('value') },
    ]);
    const { records } = await decodePartitionRecords(buf, 0n, null, false);
    buf.fill(0);
    expect(records[0]!.key?.toString()).toBe('key');
    expect(records[0]!.value?.toString()).toBe('value');
  });

  it('rejects a batch with any byte after the CRC field flipped, naming the batch; the intact batches before it are not lost', async () => {
    const one = (offset: bigint, value: string) =>
      batch(offset, 1_000, [{ offsetDelta: 0, timestampDelta: 0, key: null, value: Buffer.from(value) }]);
    const good = await one(0n, '{"cents":1}');
    const target = await one(1n, '{"cents":100}');
    const intact = Buffer.concat([good, target]);
    expect((await decodePartitionRecords(intact, 0n, null, false)).records.map((r) => r.value?.toString())).toEqual([
      '{"cents":1}',
      '{"cents":100}',
    ]);
    // Every byte the CRC covers (attributes to the end of the batch), flipped one at a time.
    for (let at = good.length + 21; at < intact.length; at++) {
      const damaged = Buffer.from(intact);
      damaged[at]! ^= 0x08; // '1' (0x31) becomes '9' (0x39) in the value
      const before = await decodePartitionRecords(damaged, 0n, null, false);
      expect(before.records.map((r) => r.value?.toString())).toEqual(['{"cents":1}']);
      expect(before.nextOffset).toBe(1n); // the next fetch starts at the damaged batch
      const e = await decodePartitionRecords(damaged.subarray(good.length), 1n, null, false, {
        topic: 'payments',
        partition: 3,
      }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e, `byte ${at}`).toBeInstanceOf(CorruptRecordBatchError);
      expect(e).toMatchObject({ code: 'CORRUPT_RECORD_BATCH', topic: 'payments', partition: 3, offset: 1n });
    }
  });

  it('names a v0/v1 message set as an unsupported format, however short, after delivering the v2 batches before it', async () => {
    // A v1 message: offset, size, CRC-32, magic 1, attributes, timestamp, null key, value.
    const legacy = (offset: bigint, value: string, magic = 1) => {
      const v = Buffer.from(value);
      const body = Buffer.alloc(18 + v.length);
      body.writeInt8(magic, 0);
      body.writeBigInt64BE(1_000n, 2);
      body.writeInt32BE(-1, 10);
      body.writeInt32BE(v.length, 14);
      v.copy(body, 18);
      const head = Buffer.alloc(16);
      head.writeBigInt64BE(offset, 0);
      head.writeInt32BE(4 + body.length, 8);
      head.writeUInt32BE(crc32(body), 12);
      return Buffer.concat([head, body]);
    };
    for (const [magic, value] of [
      [1, 'tiny'], // shorter than a v2 batch header: once taken for a partial batch (no progress)
      [0, 'x'.repeat(200)],
    ] as const) {
      const e = await decodePartitionRecords(legacy(7n, value, magic), 7n, null, false, { topic: 'old', partition: 2 }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(UnsupportedMessageFormatError);
      expect(e).toMatchObject({ code: 'MESSAGE_FORMAT_UNSUPPORTED', topic: 'old', partition: 2, offset: 7n, magic });
    }
    const v2 = await batch(5n, 1_000, [{ offsetDelta: 0, timestampDelta: 0, key: null, value: Buffer.from('new') }]);
    const mixed = await decodePartitionRecords(Buffer.concat([v2, legacy(6n, 'old')]), 5n, null, false);
    expect(mixed.records.map((r) => r.value?.toString())).toEqual(['new']);
    expect(mixed.nextOffset).toBe(6n);
    // Fewer than 17 bytes at the end: a partial batch, as before.
    expect(
      (await decodePartitionRecords(Buffer.concat([v2, legacy(6n, 'old').subarray(0, 16)]), 5n, null, false)).nextOffset,
    ).toBe(6n);
  });
});
