import { ConfigError } from '@oncely/core';
import { loadMigrations, PostgresStore, SchemaTooNewError } from '@oncely/postgres-offsets';
import { describe, expect, it } from 'vitest';
import { databaseUrl, freshSchema, pgPool } from '../support/fixtures.js';
import { newStore, rejection } from './support.js';

const pool = pgPool();

async function tables(schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ table_name: string }>(
    'select table_name from information_schema.tables where table_schema = $1 order by table_name',
    [schema],
  );
  return rows.map((r) => r.table_name);
}

describe('migrations', () => {
  it('ships numbered files that load from the package, starting at 0001', async () => {
    const migrations = await loadMigrations();
    expect(migrations[0]).toMatchObject({ id: 1, name: '0001_initial.sql' });
    expect(migrations.map((m) => m.id)).toEqual(migrations.map((_, i) => i + 1));
  });

  it('creates the schema and its tables, and a second run applies nothing', async () => {
    const schema = freshSchema();
    const store = newStore(schema);
    const all = (await loadMigrations()).map((m) => m.name);
    const first = await store.migrate();
    expect(first.applied).toEqual(all);
    expect(all.slice(0, 2)).toEqual(['0001_initial.sql', '0002_crash_detection.sql']);
    expect(await tables(schema)).toEqual([
      'admin_audit',
      'checkpoints',
      'dead_letters',
      'migrations',
      'offset_log',
      'partitions',
      'workers',
    ]);
    const second = await store.migrate();
    expect(second).toEqual({ applied: [], version: first.version });
    const { rows } = await pool.query(`select id, name from ${schema}.migrations`);
    expect(rows).toEqual(all.map((name, i) => ({ id: i + 1, name })));
  });

  it('is safe when three workers migrate the same schema at once', async () => {
    const schema = freshSchema();
    const stores = [newStore(schema), newStore(schema), newStore(schema)];
    const results = await Promise.all(stores.map((s) => s.migrate()));
    // Each migration ran exactly once, in whichever worker got the advisory lock first.
    const all = (await loadMigrations()).map((m) => m.name);
    expect(results.flatMap((r) => r.applied).sort()).toEqual(all);
    expect(new Set(results.map((r) => r.version)).size).toBe(1);
    const { rows } = await pool.query(`select count(*)::int as n from ${schema}.migrations`);
    expect(rows[0].n).toBe(all.length);
  });

  it('refuses a database that has a migration newer than the code', async () => {
    const schema = freshSchema();
    const store = newStore(schema);
    await store.migrate();
    await pool.query(`insert into ${schema}.migrations (id, name) values (999, '0999_from_the_future.sql')`);
    const e = await rejection(store.migrate());
    expect(e).toBeInstanceOf(SchemaTooNewError);
    expect(e).toMatchObject({ code: 'SCHEMA_TOO_NEW', retriable: false, databaseVersion: 999, schema });
    expect((e as Error).message).toContain(schema);
    expect((e as Error).message).toMatch(/Upgrade @oncely\/postgres-offsets/);
  });

  it.each(['Oncely', '1abc', 'a-b', 'x'.repeat(64), 'public; drop table t', '', 'sch"ema'])(
    'refuses the schema name %j with a ConfigError',
    (schema) => {
      const e = (() => {
        try {
          new PostgresStore({ connectionString: databaseUrl(), schema });
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(ConfigError);
      expect(e).toMatchObject({ code: 'CONFIG_INVALID' });
    },
  );

  it('accepts a 63-character schema name and defaults to "oncely"', async () => {
    const long = newStore('a'.repeat(63));
    expect(long.options.schema).toBe('a'.repeat(63));
    const defaults = newStore(undefined as unknown as string);
    expect(defaults.options).toMatchObject({ schema: 'oncely', poolMax: 10, lockTimeoutMs: 5000, applicationName: 'oncely' });
    expect(Object.isFrozen(defaults.options)).toBe(true);
  });

  it('refuses contradictory or out-of-range options', () => {
    const k = newStore(freshSchema()).knex;
    expect(() => new PostgresStore({ connectionString: databaseUrl(), knex: k } as never)).toThrow(ConfigError);
    expect(() => new PostgresStore({} as never)).toThrow(/connectionString/);
    expect(() => new PostgresStore({ connectionString: databaseUrl(), poolMax: 0 })).toThrow(/poolMax/);
    expect(() => new PostgresStore({ connectionString: databaseUrl(), lockTimeoutMs: 1.5 })).toThrow(/lockTimeoutMs/);
  });

  it('uses a knex instance it is given and leaves it open on close', async () => {
    const schema = freshSchema();
    // Another store's pool stands in for the application's own knex instance.
    const k = newStore(schema).knex;
    const store = new PostgresStore({ knex: k, schema });
    expect(store.options.ownsPool).toBe(false);
    await store.migrate();
    await store.close();
    await store.close();
    const { rows } = await k.raw(`select count(*)::int as n from ${schema}.partitions`);
    expect(rows[0].n).toBe(0);
  });
});
