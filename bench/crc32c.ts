/**
 * The price of verifying CRC-32C on every fetched record batch, against plain decoding in the
 * same run: `pnpm exec tsx --conditions=source bench/crc32c.ts [--mb 64] [--rounds 5]`.
 *
 * The input is what a fetch of the benchmark's topic returns: batches of 1,000 records with
 * 150-byte JSON values and 8-byte keys, uncompressed, encoded by kafkajs. Prints, per variant,
 * ms per MB and MB/s (the best of the rounds, each round over the whole input):
 *   decode            decodePartitionRecords with the CRC check off (the baseline)
 *   decode + CRC      decodePartitionRecords as the reader runs it
 *   CRC-32C alone     the slicing-by-16 checksum over the same bytes
 *   byte-at-a-time    kafkajs's table-driven CRC-32C, one lookup per byte (for comparison)
 * Nothing is asserted: read the figures on the machine you care about.
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { crc32c } from '../packages/core/src/kafkajs/crc32c.js';
import { decodePartitionRecords } from '../packages/core/src/kafkajs/wire.js';

const require = createRequire(import.meta.url);
type Long = { fromValue(v: string): unknown; fromNumber(v: number): unknown };
const Long = require('kafkajs/src/utils/long') as Long;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (args: Record<string, unknown>) => Promise<{ buffer: Buffer }>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (args: Record<string, unknown>) => unknown;
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;

const { values } = parseArgs({
  options: { mb: { type: 'string', default: '64' }, rounds: { type: 'string', default: '5' } },
});
const targetBytes = Number(values.mb) * 1024 * 1024;
const rounds = Number(values.rounds);

async function makeInput(): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  let size = 0;
  let offset = 0n;
  // A fetch response holds up to fetchMaxBytesPerPartition (256 KiB) per partition: chunks of that size.
  let current: Buffer[] = [];
  let currentSize = 0;
  while (size < targetBytes) {
    const records = Array.from({ length: 1000 }, (_, i) => {
      const seq = Number(offset) + i;
      const value = JSON.stringify({ seq, account: `acct-${seq % 1000}`, cents: seq % 997, pad: '' });
      return Record({
        offsetDelta: i,
        timestampDelta: Long.fromNumber(i),
        key: Buffer.from(`k${String(seq % 1000).padStart(7, '0')}`),
        value: Buffer.from(value.replace('"pad":""', `"pad":"${'x'.repeat(Math.max(0, 150 - value.length))}"`)),
      });
    });
    const { buffer } = await RecordBatch({
      firstOffset: Long.fromValue(offset.toString()),
      firstTimestamp: 1_700_000_000_000,
      maxTimestamp: 1_700_000_000_999,
      lastOffsetDelta: 999,
      records,
    });
    offset += 1000n;
    current.push(buffer);
    currentSize += buffer.length;
    size += buffer.length;
    if (currentSize >= 256 * 1024) {
      chunks.push(Buffer.concat(current));
      current = [];
      currentSize = 0;
    }
  }
  if (current.length > 0) chunks.push(Buffer.concat(current));
  return chunks;
}

async function best(run: () => Promise<void> | void): Promise<number> {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds + 1; r++) {
    const t = performance.now();
    await run();
    const ms = performance.now() - t;
    if (r > 0) min = Math.min(min, ms); // round 0 warms the JIT up
  }
  return min;
}

const chunks = await makeInput();
const bytes = chunks.reduce((a, c) => a + c.length, 0);
const mb = bytes / 1024 / 1024;
let sink = 0;
const variants: Array<[string, () => Promise<void> | void]> = [
  [
    'decode',
    async () => {
      for (const c of chunks) sink += (await decodePartitionRecords(c, 0n, null, false, { checkCrc: false })).records.length;
    },
  ],
  [
    'decode + CRC',
    async () => {
      for (const c of chunks) sink += (await decodePartitionRecords(c, 0n, null, false)).records.length;
    },
  ],
  [
    'CRC-32C alone',
    () => {
      for (const c of chunks) sink ^= crc32c(c);
    },
  ],
  [
    'byte-at-a-time',
    () => {
      for (const c of chunks) sink ^= kafkajsCrc32c(c);
    },
  ],
];
const results: Array<[string, number]> = [];
for (const [name, run] of variants) results.push([name, await best(run)]);

const base = results[0]![1];
console.log(
  `${mb.toFixed(1)} MB in ${chunks.length} record sets of ≤ 256 KiB, best of ${rounds} rounds (Node ${process.version})`,
);
console.log(`${'variant'.padEnd(16)} ${'ms/MB'.padStart(8)} ${'MB/s'.padStart(8)} ${'vs decode'.padStart(10)}`);
for (const [name, ms] of results) {
  const vs = name === 'decode' ? '' : `${ms >= base ? '+' : ''}${(((ms - base) / base) * 100).toFixed(0)}%`;
  console.log(
    `${name.padEnd(16)} ${(ms / mb).toFixed(3).padStart(8)} ${(mb / (ms / 1000)).toFixed(0).padStart(8)} ${name.startsWith('decode') ? vs.padStart(10) : `${((ms / base) * 100).toFixed(0)}% of it`.padStart(10)}`,
  );
}
if (sink === 0.5) console.log(sink); // keeps the work observable
