/**
 * The worker's per-record path without services, stage by stage:
 * `pnpm exec tsx --conditions=source bench/hot-path.ts [--records 300000] [--rounds 7]`.
 *
 * The input is what fetches of the benchmark's topic return: record batches of ~333 records (the
 * producer's 2,000-record sends spread over 6 partitions) with the benchmark's 150-byte JSON values
 * and 9-byte keys (bench/data.ts), uncompressed, encoded by kafkajs, in fetches of 256 KiB. Prints,
 * per stage, ns per record (the best of the rounds; each round goes through all the records):
 *   wire decode       decodePartitionRecords with the CRC-32C check (the reader's work per fetch)
 *   messages (json)   the runtime's decodeRecords with the json() codec (batches of ~1,300 records)
 *   rows text         scenario 6's handler body as it was before the binary format (the value as a
 *                     string) and copyRows' COPY text, written to a sink instead of a connection
 *   rows binary       scenario 6's handler body (bench/scenarios/oncely-app.ts: the value's Buffer)
 *                     and copyRows' binary encoding of the batch (the COPY's few 64 KiB writes and
 *                     its round trip left out)
 *   ledger handler    scenario 7's aggregation per account (its one statement is left out)
 * Nothing is asserted; it is the quick A/B for changes to these stages. The end-to-end figure is
 * `pnpm bench`'s CPU µs per record.
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import type { Message } from '../packages/core/src/app/types.js';
import { json } from '../packages/core/src/codec/codecs.js';
import { decodePartitionRecords } from '../packages/core/src/kafkajs/wire.js';
import { decodeRecords } from '../packages/core/src/runtime/handler-invoker.js';
import { type BinaryColumn, encodeBinaryRows } from '../packages/postgres-offsets/src/bulk/copy-binary.js';
import { copyRows } from '../packages/postgres-offsets/src/bulk/copy-rows.js';
import { accountOf, ledgerColumns, recordValue } from './data.js';
import type { Payment } from './scenarios/oncely-app.js';

const require = createRequire(import.meta.url);
type Long = { fromValue(v: string): unknown; fromNumber(v: number): unknown };
const Long = require('kafkajs/src/utils/long') as Long;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (args: Record<string, unknown>) => Promise<{ buffer: Buffer }>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (args: Record<string, unknown>) => unknown;

const { values } = parseArgs({
  options: { records: { type: 'string', default: '300000' }, rounds: { type: 'string', default: '7' } },
});
const total = Number(values.records);
const rounds = Number(values.rounds);
const TOPIC = 'oncely-bench-1000000r-6p-150b';
const PER_BATCH = 333;
const FETCH_BYTES = 256 * 1024;

/** Fetch payloads: whole record batches, up to FETCH_BYTES each. */
async function makeFetches(): Promise<Buffer[]> {
  const fetches: Buffer[] = [];
  let current: Buffer[] = [];
  let size = 0;
  for (let first = 0; first < total; first += PER_BATCH) {
    const n = Math.min(PER_BATCH, total - first);
    const records = Array.from({ length: n }, (_, i) =>
      Record({
        offsetDelta: i,
        timestampDelta: Long.fromNumber(i),
        key: Buffer.from(accountOf(first + i)),
        value: Buffer.from(recordValue(first + i, 150)),
      }),
    );
    const { buffer } = await RecordBatch({
      firstOffset: Long.fromValue(String(first)),
      firstTimestamp: 1_700_000_000_000,
      maxTimestamp: 1_700_000_000_000 + n - 1,
      lastOffsetDelta: n - 1,
      records,
    });
    if (size + buffer.length > FETCH_BYTES && current.length > 0) {
      fetches.push(Buffer.concat(current));
      current = [];
      size = 0;
    }
    current.push(buffer);
    size += buffer.length;
  }
  if (current.length > 0) fetches.push(Buffer.concat(current));
  return fetches;
}

/** A knex transaction as far as copyRows uses it: a connection whose COPY goes to a byte counter. */
function sinkTransaction(): { tx: never; bytes: () => number } {
  let bytes = 0;
  const client = {
    query(stream: {
      connection: unknown;
      handleCopyInResponse(c: unknown): void;
      handleCommandComplete(m: unknown): void;
      handleReadyForQuery(): void;
    }) {
      const sink = {
        write(chunk: Buffer) {
          bytes += chunk.length;
          // CopyDone: the stream waits for ReadyForQuery before it finishes.
          if (chunk.length === 5 && chunk[0] === 0x63) {
            setImmediate(() => {
              stream.handleCommandComplete({ text: 'COPY 0' });
              stream.handleReadyForQuery();
            });
          }
          return true;
        },
        once() {},
      };
      stream.connection = { stream: sink };
      setImmediate(() => stream.handleCopyInResponse(stream.connection));
      return stream;
    },
  };
  const tx = { client: { acquireConnection: async () => client } };
  return { tx: tx as never, bytes: () => bytes };
}

const ROW_COLUMNS = ['topic', 'partition', 'offset', 'key', 'value'];
/** The rows table's columns (scenarios/tables.ts) as copyRows' binary format reads them. */
const BINARY_COLUMNS: BinaryColumn[] = [
  { name: 'topic', type: 'text', kind: 'text' },
  { name: 'partition', type: 'integer', kind: 'int4' },
  { name: 'offset', type: 'bigint', kind: 'int8' },
  { name: 'key', type: 'text', kind: 'text' },
  { name: 'value', type: 'jsonb', kind: 'jsonb' },
];

async function main(): Promise<void> {
  const fetches = await makeFetches();
  const codec = json<Payment>();
  const def = { codec } as never;
  const { tx } = sinkTransaction();
  const stages: Record<string, number[]> = {
    'wire decode': [],
    'messages (json)': [],
    'rows text': [],
    'rows binary': [],
    'ledger handler': [],
  };
  let sink = 0;
  // One fetch at a time through every stage, as a worker does (a small live set), timed in CPU
  // (process.cpuUsage: user + system), which other processes on the machine do not inflate.
  const cpu = () => {
    const c = process.cpuUsage();
    return c.user + c.system;
  };
  for (let round = 0; round < rounds; round++) {
    const spent = { wire: 0, messages: 0, rows: 0, binary: 0, ledger: 0 };
    for (const f of fetches) {
      let t = cpu();
      const records = (await decodePartitionRecords(f, 0n, null, true)).records;
      let u = cpu();
      spent.wire += u - t;
      t = u;
      const messages = decodeRecords<unknown>(def, TOPIC, 0, records) as unknown as Array<Message<Payment>>;
      u = cpu();
      spent.messages += u - t;
      t = u;
      await copyRows(
        tx,
        'bench.rows',
        ROW_COLUMNS,
        messages.map((m) => [m.topic, m.partition, m.offset, m.key?.toString('utf8') ?? null, m.raw.value?.toString('utf8')]),
      );
      u = cpu();
      spent.rows += u - t;
      t = u;
      const chunks = encodeBinaryRows(
        BINARY_COLUMNS,
        messages.map((m) => [m.topic, m.partition, m.offset, m.key?.toString('utf8') ?? null, m.raw.value]),
      );
      sink += chunks.length;
      u = cpu();
      spent.binary += u - t;
      t = u;
      const [accounts, cents, counts] = ledgerColumns(messages.map((m) => m.value));
      sink += accounts.length + cents.length + counts.length;
      spent.ledger += cpu() - t;
    }
    stages['wire decode']!.push(spent.wire / 1000);
    stages['messages (json)']!.push(spent.messages / 1000);
    stages['rows text']!.push(spent.rows / 1000);
    stages['rows binary']!.push(spent.binary / 1000);
    stages['ledger handler']!.push(spent.ledger / 1000);
  }
  console.log(`${total} records, ${fetches.length} fetches, best of ${rounds} rounds (CPU ns per record):`);
  for (const [name, ms] of Object.entries(stages)) {
    const best = Math.min(...ms);
    const median = [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
    console.log(
      `  ${name.padEnd(16)} ${((best * 1e6) / total).toFixed(0).padStart(6)}  (median ${((median * 1e6) / total).toFixed(0)})`,
    );
  }
  if (sink < 0) console.log(sink);
}

await main();
