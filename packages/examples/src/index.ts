/**
 * @oncely/examples — runnable oncely apps.
 *
 * The ledger (`ledger/app.ts`): payments applied to balances through an inversify-resolved
 * repository; `bash scripts/demo.sh` SIGKILLs its worker mid-stream and audits the result.
 */

export type { Payment } from './ledger/app.js';
export { createLedgerApp, createLedgerTables, LEDGER_SCHEMA, LedgerRepository, ledgerSchema } from './ledger/app.js';
export type { AuditResult, LedgerWorkerEnv, LedgerWorkerProcess, Produced, ProduceOptions } from './ledger/harness.js';
export { auditLedger, highWatermarks, producePayments, spawnLedgerWorker, waitCaughtUp } from './ledger/harness.js';
