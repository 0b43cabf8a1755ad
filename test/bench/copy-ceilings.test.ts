/**
 * The benchmark's Postgres write ceilings must write the rows the row-per-record scenarios write:
 * the pre-built COPY buffers (binary and text, scenario 2) and the file psql's \copy loads
 * (scenario 3, when psql is installed) give the same table, row for row, as data.ts defines it.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountOf, recordValue } from '../../bench/data.js';
import { COPY_COLUMNS, copyChunks } from '../../bench/scenarios/copy-data.js';
import { findPsql } from '../../bench/scenarios/psql-copy.js';
import { createRowsTable } from '../../bench/scenarios/tables.js';
import { databaseUrl, freshSchema } from '../support/fixtures.js';

// 3 partitions and enough rows to span several 256 KiB buffers.
const spec = { topic: 'bench-copy-test', partitions: 3, records: 4_000, valueBytes: 150 };
const client = new pg.Client({ connectionString: databaseUrl() });

beforeAll(async () => {
  await client.connect();
});
afterAll(async () => {
  await client.end();
});

async function copyInto(table: string, chunks: Buffer[], format: 'text' | 'binary') {
  const stream = client.query(
    copyFrom(`copy ${table} ${COPY_COLUMNS} from stdin${format === 'binary' ? ' (format binary)' : ''}`),
  );
  const finished = once(stream, 'finish');
  for (const c of chunks) if (!stream.write(c)) await once(stream, 'drain');
  stream.end();
  await finished;
}

interface Row {
  topic: string;
  partition: number;
  offset: string;
  key: string;
  value: unknown;
}

/** Every row, in partition and offset order, the value parsed. */
async function rowsOf(table: string): Promise<Row[]> {
  const { rows } = await client.query<Omit<Row, 'value'> & { value: string }>(
    `select topic, partition, "offset"::text as "offset", key, value::text as value from ${table} order by partition, "offset" + 0`,
  );
  return rows.map((r) => ({ ...r, value: JSON.parse(r.value) as unknown }));
}

/** What the table must hold: record seq in partition seq % partitions, offsets dense per partition. */
function expected(): Row[] {
  const next = new Array<number>(spec.partitions).fill(0);
  const rows: Row[] = [];
  for (let seq = 0; seq < spec.records; seq++) {
    const partition = seq % spec.partitions;
    const offset = next[partition]!++;
    const value = JSON.parse(recordValue(seq, spec.valueBytes)) as unknown;
    rows.push({ topic: spec.topic, partition, offset: String(offset), key: accountOf(seq), value });
  }
  return rows.sort((x, y) => x.partition - y.partition || Number(x.offset) - Number(y.offset));
}

describe('bench COPY ceilings', () => {
  it('the binary and text buffers hold the same rows, as data.ts defines them', async () => {
    const schema = freshSchema('benchcopy');
    const binary = copyChunks(spec, 'binary');
    const text = copyChunks(spec, 'text');
    expect(binary.length).toBeGreaterThan(1);
    const a = await createRowsTable(client, schema);
    await copyInto(a, binary, 'binary');
    await client.query(`create table ${schema}.text_rows (like ${a} including all)`);
    await copyInto(`${schema}.text_rows`, text, 'text');
    const got = await rowsOf(a);
    expect(got).toEqual(expected());
    expect(await rowsOf(`${schema}.text_rows`)).toEqual(got);
  });

  it.runIf(findPsql() !== undefined)("psql's \\copy of the text file gives the same table", async () => {
    const schema = freshSchema('benchpsql');
    const table = await createRowsTable(client, schema);
    const file = join(tmpdir(), `bench-copy-test-${process.pid}.tsv`);
    writeFileSync(file, Buffer.concat(copyChunks(spec, 'text')));
    try {
      const r = spawnSync(
        findPsql()!,
        ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', databaseUrl(), '-c', `\\copy ${table} ${COPY_COLUMNS} from '${file}'`],
        {
          encoding: 'utf8',
        },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(file, { force: true });
    }
    await client.query(`create table ${schema}.binary_rows (like ${table} including all)`);
    await copyInto(`${schema}.binary_rows`, copyChunks(spec, 'binary'), 'binary');
    expect(await rowsOf(table)).toEqual(await rowsOf(`${schema}.binary_rows`));
  });

  it('findPsql finds only an executable, and PSQL names it', () => {
    expect(findPsql({ PATH: '/nonexistent-dir' })).toBeUndefined();
    expect(findPsql({ PSQL: '/nonexistent-dir/psql' })).toBeUndefined();
    expect(findPsql({ PSQL: process.execPath })).toBe(process.execPath);
  });
});
