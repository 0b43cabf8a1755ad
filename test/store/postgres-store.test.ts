import type { Knex } from 'knex';
import { newStore } from '../postgres-offsets/support.js';
import { freshSchema, pgPool } from '../support/fixtures.js';
import { storeContract } from './store-contract.js';

storeContract<Knex.Transaction>('PostgresStore', async () => {
  const schema = freshSchema('contract');
  const store = newStore(schema);
  await store.migrate();
  await pgPool().query(`create table ${schema}.kv (key text primary key, value text not null)`);
  return {
    store,
    write: async (tx, key, value) => {
      await tx.raw(`insert into ${schema}.kv (key, value) values (?, ?) on conflict (key) do update set value = excluded.value`, [
        key,
        value,
      ]);
    },
    read: async (key) => (await pgPool().query(`select value from ${schema}.kv where key = $1`, [key])).rows[0]?.value,
  };
});
