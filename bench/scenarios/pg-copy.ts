/**
 * Scenario 2, the Postgres write ceiling: the same rows as the row-per-record scenarios (topic,
 * partition, offset, key, value), made in memory before the clock starts, written with
 * `COPY … FROM STDIN` (text format) on one connection into a table with a primary key on
 * (topic, partition, offset). No Kafka.
 */
import { once } from 'node:events';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ScenarioInput } from '../config.js';
import { accountOf, recordValue } from '../data.js';
import { startWindow, suffix } from '../measure.js';
import { createRowsTable, dropSchema } from './tables.js';
import type { Outcome } from './types.js';

const ROWS_PER_CHUNK = 5_000;

export async function pgCopy(input: ScenarioInput): Promise<Outcome> {
  // Coordinates as Kafka would give them: partition by account, offsets dense per partition.
  const chunks: Buffer[] = [];
  const nextOffset = new Array<number>(input.partitions).fill(0);
  let lines: string[] = [];
  for (let seq = 0; seq < input.records; seq++) {
    const partition = seq % input.partitions;
    const offset = nextOffset[partition]!++;
    // The values hold no tab, newline or backslash, so text format needs no escaping.
    lines.push(`${input.topic}\t${partition}\t${offset}\t${accountOf(seq)}\t${recordValue(seq, input.valueBytes)}\n`);
    if (lines.length === ROWS_PER_CHUNK) {
      chunks.push(Buffer.from(lines.join('')));
      lines = [];
    }
  }
  if (lines.length > 0) chunks.push(Buffer.from(lines.join('')));

  const client = new pg.Client({ connectionString: input.databaseUrl, application_name: 'oncely-bench-copy' });
  await client.connect();
  const schema = `bench_copy_${suffix()}`;
  try {
    const table = await createRowsTable(client, schema);
    const end = startWindow();
    const stream = client.query(copyFrom(`copy ${table} (topic, partition, "offset", key, value) from stdin`));
    const finished = once(stream, 'finish');
    for (const chunk of chunks) {
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
    stream.end();
    await finished;
    const window = end();
    const { rows } = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
    const n = Number(rows[0]!.n);
    return { records: n, ok: n === input.records, check: `${n} rows of ${input.records}`, window };
  } finally {
    await dropSchema(client, schema).catch(() => {});
    await client.end();
  }
}
