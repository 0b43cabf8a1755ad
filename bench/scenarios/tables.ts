/** The tables the scenarios write: each run gets its own schema, dropped when the run ends. */
import type pg from 'pg';

/** One row per record, keyed like the record's coordinates (the COPY ceiling and scenarios 3, 4, 5, 7). */
export async function createRowsTable(client: pg.Client, schema: string): Promise<string> {
  await client.query(`create schema ${schema}`);
  await client.query(`create table ${schema}.records (
    topic text not null, partition int not null, "offset" bigint not null, key text, value jsonb not null,
    primary key (topic, partition, "offset"))`);
  return `${schema}.records`;
}

/** Balances per account, with the number of records applied (scenario 6). */
export async function createBalancesTable(client: pg.Client, schema: string): Promise<string> {
  await client.query(`create schema ${schema}`);
  await client.query(
    `create table ${schema}.balances (account text primary key, cents bigint not null, records bigint not null)`,
  );
  return `${schema}.balances`;
}

export async function dropSchema(client: pg.Client, schema: string): Promise<void> {
  await client.query(`drop schema if exists ${schema} cascade`);
}
