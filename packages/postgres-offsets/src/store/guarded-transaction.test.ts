import type { Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { type EndingCall, guardTransaction } from './guarded-transaction.js';

/** A stand-in with the shape the guard touches: callable, raw(), commit(), rollback(), other properties. */
function fakeTransaction() {
  const calls: string[] = [];
  const trx = Object.assign((table: string) => calls.push(`table ${table}`), {
    raw: (sql: string) => calls.push(`raw ${sql}`),
    commit: () => calls.push('commit'),
    rollback: () => calls.push('rollback'),
    isTransaction: true,
  });
  return { trx: trx as unknown as Knex.Transaction, calls };
}

describe('guardTransaction', () => {
  it('refuses commit(), rollback() and raw SQL that ends the transaction; lets everything else through', async () => {
    const { trx, calls } = fakeTransaction();
    const refused: EndingCall[] = [];
    const tx = guardTransaction(trx, (call) => {
      refused.push(call);
      return new Error(call);
    });
    await expect(tx.commit()).rejects.toThrow('commit');
    await expect(tx.rollback()).rejects.toThrow('rollback');
    for (const sql of [
      'commit',
      ' COMMIT WORK',
      'end',
      'abort;',
      'rollback',
      'ROLLBACK TRANSACTION',
      "prepare transaction 'x'",
    ]) {
      expect(() => tx.raw(sql), sql).toThrow('sql');
    }
    for (const sql of [
      'rollback to savepoint s1',
      'ROLLBACK TRANSACTION TO s1',
      'select 1',
      'balances.cents + excluded.cents',
      'endpoint',
    ]) {
      tx.raw(sql);
    }
    (tx as unknown as (t: string) => void)('balances');
    expect(tx.isTransaction).toBe(true);
    expect(refused).toEqual(['commit', 'rollback', ...Array(7).fill('sql')]);
    expect(calls).toEqual([
      'raw rollback to savepoint s1',
      'raw ROLLBACK TRANSACTION TO s1',
      'raw select 1',
      'raw balances.cents + excluded.cents',
      'raw endpoint',
      'table balances',
    ]);
  });
});
