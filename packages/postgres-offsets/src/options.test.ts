import { OncelyError } from '@oncely/core';
import { describe, expect, it } from 'vitest';
import { compileStoreOptions } from './options.js';

describe('compileStoreOptions: the connection string', () => {
  it.each([
    'postgres://app:pw@db:5432/app',
    'postgresql://db/app?sslmode=require',
    'POSTGRES://db/app',
    'socket:/var/run/postgresql?db=app',
    '/var/run/postgresql app',
  ])('takes %s', (connectionString) => {
    expect(compileStoreOptions({ connectionString }).ownsPool).toBe(true);
  });

  it.each(['notaurl', 'db:5432/app', 'app:s3cret@db/app', 'mysql://db/app', 'http://db/app'])(
    'refuses %s as configuration, naming the form it expects and without the value',
    (connectionString) => {
      let thrown: unknown;
      try {
        compileStoreOptions({ connectionString });
      } catch (e) {
        thrown = e;
      }
      expect(OncelyError.is(thrown, 'CONFIG_INVALID')).toBe(true);
      const message = (thrown as Error).message;
      expect(message).toMatch(
        /^connectionString is not a PostgreSQL URL: expected postgres:\/\/user:password@host:5432\/database/,
      );
      expect(message).not.toContain(connectionString);
    },
  );
});
