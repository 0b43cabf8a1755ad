/**
 * The crash test: a real ledger worker process is SIGKILLed again and again — right after it
 * starts (before its first commit), inside a transaction, right after a commit — while a producer
 * keeps writing payments whose effect is not idempotent (balance = balance + cents). At the end,
 * every payment must be applied exactly once, every balance must equal the sum sent, and each
 * partition's records must have been applied in offset order.
 *
 * ONCELY_CRASH_KILLS raises the number of kills for a soak (default 50). The same test with the
 * platformatic reader is test/crash-platformatic.test.ts; the body is test/support/crash.ts.
 */
import { crashTest } from './support/crash.js';

crashTest('kafkajs', Number(process.env.ONCELY_CRASH_KILLS ?? 50));
