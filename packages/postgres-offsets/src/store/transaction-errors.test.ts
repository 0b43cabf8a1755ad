import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { transactionKeepingError } from './transaction-errors.js';

/** A stand-in for knex whose ROLLBACK (after a failed work) and COMMIT (after a resolved one) fail, as on a dead connection. */
function deadConnectionKnex() {
  return {
    async transaction<R>(work: (trx: Knex.Transaction) => Promise<R>): Promise<R> {
      try {
        await work({} as Knex.Transaction);
      } catch {
        throw new Error('ROLLBACK - Connection terminated unexpectedly');
      }
      throw new Error('COMMIT; - Connection terminated unexpectedly');
    },
  } as unknown as Knex;
}

describe('transactionKeepingError', () => {
  it("rejects with the work's error when the ROLLBACK after it fails too (knex rejects with the ROLLBACK's)", async () => {
    const cause = Object.assign(new Error('terminating connection due to idle-in-transaction timeout'), { code: '25P03' });
    await expect(
      transactionKeepingError(deadConnectionKnex(), async () => {
        throw cause;
      }),
    ).rejects.toBe(cause);
  });

  it('rejects as knex does when the work succeeded and the COMMIT failed', async () => {
    await expect(transactionKeepingError(deadConnectionKnex(), async () => 1)).rejects.toThrow(
      /^COMMIT; - Connection terminated/,
    );
  });
});
