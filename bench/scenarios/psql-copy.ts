/**
 * Scenario 3, PostgreSQL's own client as the write ceiling's check: the same rows as scenario 2, in
 * COPY text format, written to a temporary file before the clock starts, then loaded with
 * `psql -c "\copy … from 'file'"` over the same connection string into a fresh table of the same
 * shape. The window is psql's whole run (start, connect, COPY, exit); its CPU is psql's (the rusage
 * of the reaped child), not this process's.
 *
 * psql is found on PATH (or PSQL names it). Without it the scenario is skipped and says so: it is
 * a reference, not a part of oncely.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, closeSync, constants, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import type { ScenarioInput } from '../config.js';
import { childrenCpuSec, collectGarbage, suffix } from '../measure.js';
import { COPY_COLUMNS, copyChunks } from './copy-data.js';
import { createRowsTable, dropSchema } from './tables.js';
import type { Outcome } from './types.js';

/** The psql executable: PSQL, else the first `psql` on PATH; undefined when there is none. */
export function findPsql(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = env.PSQL ? [env.PSQL] : (env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'psql'));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {}
  }
  return undefined;
}

export async function psqlCopy(input: ScenarioInput): Promise<Outcome> {
  const psql = findPsql();
  if (!psql)
    return {
      records: 0,
      ok: true,
      skipped: true,
      check: 'psql not found (install the PostgreSQL client or set PSQL)',
      window: { activeMs: 0, cpuSec: 0, elu: 0 },
    };
  const file = join(tmpdir(), `oncely-bench-copy-${process.pid}-${suffix()}.tsv`);
  const fd = openSync(file, 'w');
  try {
    for (const chunk of copyChunks(input, 'text')) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
  const client = new pg.Client({ connectionString: input.databaseUrl, application_name: 'oncely-bench-psql-setup' });
  await client.connect();
  const schema = `bench_psql_${suffix()}`;
  try {
    const table = await createRowsTable(client, schema);
    collectGarbage();
    const cpu0 = childrenCpuSec();
    const t0 = performance.now();
    const child = spawn(
      psql,
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', input.databaseUrl, '-c', `\\copy ${table} ${COPY_COLUMNS} from '${file}'`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    const activeMs = performance.now() - t0;
    const cpu1 = childrenCpuSec();
    const window = { activeMs, cpuSec: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : Number.NaN, elu: 0 };
    if (code !== 0)
      return { records: 0, ok: false, check: `psql exited with ${code ?? signal}: ${stderr.trim().slice(0, 500)}`, window };
    const { rows } = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
    const n = Number(rows[0]!.n);
    return { records: n, ok: n === input.records, check: `${n} rows of ${input.records} (${psql})`, window };
  } finally {
    rmSync(file, { force: true });
    await dropSchema(client, schema).catch(() => {});
    await client.end();
  }
}
