/**
 * The crash test's body, shared by one test file per reader adapter (test/crash.test.ts for
 * kafkajs, test/crash-platformatic.test.ts): a real ledger worker process is SIGKILLed again and
 * again while a producer writes payments whose effect is not idempotent, then audited row by row.
 */
import {
  auditLedger,
  createLedgerTables,
  highWatermarks,
  producePayments,
  spawnLedgerWorker,
  waitCaughtUp,
} from '@oncely/examples';
import knexFactory from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { stopOnCleanup } from './cleanup.js';
import { brokers, createTopic, databaseUrl, freshSchema, randomName } from './fixtures.js';

const phases = ['before-commit', 'in-transaction', 'after-commit'] as const;

/** Declares the crash test for one reader adapter. */
export function crashTest(reader: 'kafkajs' | 'platformatic', kills: number): void {
  describe(`crash test (${reader} reader)`, () => {
    const knex = knexFactory({ client: 'pg', connection: databaseUrl(), pool: { min: 0, max: 2 } });
    afterAll(() => knex.destroy());

    it(`applies every record exactly once across ${kills} SIGKILLs`, { timeout: 30 * 60_000 }, async () => {
      const topic = await createTopic(4, { prefix: 'crash' });
      const oncelySchema = freshSchema('crash_oncely');
      const ledger = freshSchema('crash_ledger');
      const group = randomName('crash');
      await createLedgerTables(knex, ledger);
      const env = {
        KAFKA_BROKERS: brokers().join(','),
        DATABASE_URL: databaseUrl(),
        ONCELY_SCHEMA: oncelySchema,
        LEDGER_TOPIC: topic,
        LEDGER_GROUP: group,
        LEDGER_SCHEMA: ledger,
        LEDGER_TRACE: '1' as const,
        LEDGER_BATCH: '20',
        // A little time inside each transaction makes "in-transaction" kills land there.
        LEDGER_HANDLER_DELAY_MS: '1',
        // The default crash budget: these kills come from outside at random, and none of them may be
        // blamed on a record (the crash budget's own test has a record that really kills the process).
        // One identity across restarts (a StatefulSet pod, a systemd unit): a restarted worker takes
        // its own partitions back at once instead of waiting for the lease of its dead self.
        LEDGER_WORKER_ID: `${group}-worker`,
        LEDGER_READER: reader,
      };
      const stopProducing = new AbortController();
      const production = producePayments({
        brokers: brokers(),
        topic,
        count: 1_000_000,
        chunk: 20,
        pauseMs: 40,
        signal: stopProducing.signal,
      });

      const landed: Record<string, number> = {};
      for (let k = 0; k < kills; k++) {
        const target = phases[k % phases.length]!;
        const w = spawnLedgerWorker(env);
        stopOnCleanup(w.child);
        if (target === 'before-commit') await w.waitFor(/^phase running/);
        else if (target === 'in-transaction') await w.waitFor(/^phase in-tx/);
        else await w.waitFor(/^phase committed/);
        w.child.kill('SIGKILL');
        await w.exited;
        // What the worker announced last is where the kill landed (the signal is asynchronous).
        const last = w.lastPhase()?.split(' ')[1] ?? 'none';
        const where = last === 'running' ? 'before-commit' : last === 'in-tx' ? 'in-transaction' : 'after-commit';
        landed[where] = (landed[where] ?? 0) + 1;
      }
      stopProducing.abort();
      const produced = await production;

      const final = spawnLedgerWorker(env);
      stopOnCleanup(final.child);
      const targets = await highWatermarks(brokers(), topic);
      try {
        await waitCaughtUp(knex, oncelySchema, group, topic, targets, { timeoutMs: 300_000 });
      } catch (e) {
        // What the final worker said and what the store holds: why it did not get there.
        const rows = await knex.withSchema(oncelySchema).from('partitions').where({ group_id: group, topic }).select('*');
        throw new Error(
          `${(e as Error).message}\npartitions: ${JSON.stringify(rows)}\nfinal worker, last phase: ${final.lastPhase()}, ` +
            `events: ${final.events().slice(-20).join(' | ')}\nits stderr (tail):\n${final.stderr().slice(-8_000)}`,
          { cause: e },
        );
      }
      final.child.kill('SIGTERM');
      const exit = await final.exited;

      const audit = await auditLedger(knex, ledger, produced);
      console.log(
        `crash test (${reader} reader): ${kills} SIGKILLs landed ${JSON.stringify(landed)}; ${produced.count} payments produced, ` +
          `${audit.appliedRows} applied, ${audit.duplicates} duplicates, ${audit.missing} missing, ` +
          `${audit.balanceMismatches.length} wrong balances, ${audit.orderViolations} out of order`,
      );
      expect(exit.code).toBe(0);
      expect(produced.count).toBeGreaterThan(0);
      expect(audit.duplicates).toBe(0);
      expect(audit.missing).toBe(0);
      expect(audit.unknown).toBe(0);
      expect(audit.balanceMismatches).toEqual([]);
      expect(audit.orderViolations).toBe(0);
      expect(audit.appliedRows).toBe(produced.count);
      expect(Object.values(landed).reduce((a, b) => a + b, 0)).toBe(kills);
      // The kills must really have hit the transaction window, not only the quiet moments.
      expect(landed['in-transaction'] ?? 0).toBeGreaterThan(0);
    });
  });
}
