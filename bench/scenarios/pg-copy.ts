/**
 * Scenario 2, the Postgres write ceiling: the same rows as the row-per-record scenarios, built as
 * COPY bytes (text or binary, `--copy-format`) in memory before the clock starts, then streamed
 * with `COPY … FROM STDIN` on one connection, as fast as the socket takes them, into a table with a
 * primary key on (topic, partition, offset). No Kafka, and no formatting while timed: what
 * PostgreSQL can take, which scenario 3 (psql's \copy) checks in the same run.
 */
import { once } from 'node:events';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ScenarioInput } from '../config.js';
import { collectGarbage, startWindow, suffix } from '../measure.js';
import { COPY_COLUMNS, copyChunks } from './copy-data.js';
import { createRowsTable, dropSchema } from './tables.js';
import type { Outcome } from './types.js';

export async function pgCopy(input: ScenarioInput): Promise<Outcome> {
  const chunks = copyChunks(input, input.copyFormat);
  const client = new pg.Client({ connectionString: input.databaseUrl, application_name: 'oncely-bench-copy' });
  await client.connect();
  const schema = `bench_copy_${suffix()}`;
  try {
    const table = await createRowsTable(client, schema);
    collectGarbage();
    const end = startWindow();
    const format = input.copyFormat === 'binary' ? ' (format binary)' : '';
    const stream = client.query(copyFrom(`copy ${table} ${COPY_COLUMNS} from stdin${format}`));
    const finished = once(stream, 'finish');
    for (const chunk of chunks) {
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
    stream.end();
    await finished;
    const window = end();
    const { rows } = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
    const n = Number(rows[0]!.n);
    return { records: n, ok: n === input.records, check: `${n} rows of ${input.records} (${input.copyFormat})`, window };
  } finally {
    await dropSchema(client, schema).catch(() => {});
    await client.end();
  }
}
