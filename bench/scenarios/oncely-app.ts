/**
 * The oncely apps of the benchmark, by handler (see OncelyConfig in config.ts), shared by the
 * in-process scenarios (oncely.ts) and the worker processes of bench:recovery and bench:scale
 * (worker.ts): what each writes, and how a run is checked against what was produced.
 */
import { type Batch, type Codec, defineApp, type Message } from '@oncely/core';
import { copyRows } from '@oncely/postgres-offsets';
import type { Knex } from 'knex';
import type pg from 'pg';
import type { OncelyConfig } from '../config.js';
import { ledgerColumns } from '../data.js';
import { createBalancesTable, createRowsTable } from './tables.js';

const ROW_COLUMNS = ['topic', 'partition', 'offset', 'key', 'value'];

/** A record's value as produced by data.ts. */
export interface Payment {
  seq: number;
  account: string;
  cents: number;
  pad: string;
}

type Ctx = { tx: Knex.Transaction };
type Wrap = <A extends unknown[]>(fn: (...args: A) => Promise<void>) => (...args: A) => Promise<void>;

/** Creates the table the handler writes, in `schema`; returns its qualified name. */
export function createTable(client: pg.Client, handler: OncelyConfig['handler'], schema: string): Promise<string> {
  return handler === 'batch-ledger' ? createBalancesTable(client, schema) : createRowsTable(client, schema);
}

export function benchApp(opts: {
  group: string;
  topic: string;
  handler: OncelyConfig['handler'];
  table: string;
  codec: Codec<Payment>;
  /** Wraps the handler (per-stage timings); identity by default. */
  timed?: Wrap;
}) {
  const { topic, table, codec } = opts;
  const timed: Wrap = opts.timed ?? ((fn) => fn);
  const app = defineApp({ group: opts.group });
  if (opts.handler === 'message') {
    const sql = `insert into ${table} (topic, partition, "offset", key, value) values (?, ?, ?, ?, ?)`;
    app.handle(
      { topic, codec },
      timed(async (m: Message<Payment>, ctx: Ctx) => {
        await ctx.tx.raw(sql, [
          m.topic,
          m.partition,
          m.offset.toString(),
          m.key?.toString('utf8') ?? null,
          JSON.stringify(m.value),
        ]);
      }),
    );
  } else if (opts.handler === 'batch-ledger') {
    const sql = `insert into ${table} (account, cents, records)
      select * from unnest(?::text[], ?::bigint[], ?::bigint[])
      on conflict (account) do update set cents = balances.cents + excluded.cents, records = balances.records + excluded.records`;
    app.handleBatch(
      { topic, codec },
      timed(async (batch: Batch<Payment>, ctx: Ctx) => {
        await ctx.tx.raw(sql, ledgerColumns(batch.messages.map((m) => m.value)));
      }),
    );
  } else {
    app.handleBatch(
      { topic, codec },
      timed(async (batch: Batch<Payment>, ctx: Ctx) => {
        // copyRows: binary COPY on the transaction's connection; the jsonb value column takes the
        // record's JSON bytes as fetched (the decoded value was validated by the codec), no string.
        await copyRows(
          ctx.tx,
          table,
          ROW_COLUMNS,
          batch.messages.map((m) => [m.topic, m.partition, m.offset, m.key?.toString('utf8') ?? null, m.raw.value]),
          { format: 'binary' },
        );
      }),
    );
  }
  return app;
}

/** Checks the table against what was produced: the row count, or the sums of the balances. */
export async function checkTable(
  client: pg.Client,
  handler: OncelyConfig['handler'],
  table: string,
  expected: { records: number; totalCents: string },
): Promise<{ ok: boolean; check: string }> {
  if (handler === 'batch-ledger') {
    const { rows } = await client.query<{ cents: string | null; records: string | null; accounts: string }>(
      `select sum(cents)::text as cents, sum(records)::text as records, count(*)::text as accounts from ${table}`,
    );
    const r = rows[0]!;
    return {
      ok: r.cents === expected.totalCents && Number(r.records) === expected.records,
      check: `sum(cents) ${r.cents} (expected ${expected.totalCents}), sum(records) ${r.records} of ${expected.records}, ${r.accounts} accounts`,
    };
  }
  const { rows } = await client.query<{ n: string }>(`select count(*)::text as n from ${table}`);
  const n = Number(rows[0]!.n);
  return { ok: n === expected.records, check: `${n} rows of ${expected.records}` };
}
