/**
 * @oncely/core/testing — a real in-memory Kafka log and transactional store, for unit tests of
 * handlers and of the runtime without a broker or a database.
 *
 * ```ts
 * import { createWorker, defineApp, json } from '@oncely/core';
 * import { MemoryLog, MemoryStore, type MemoryTx } from '@oncely/core/testing';
 *
 * const log = new MemoryLog().createTopic('payments', 1);
 * log.append('payments', 0, [{ value: JSON.stringify({ account: 'a', cents: 5 }) }]);
 * const store = new MemoryStore();
 * const app = defineApp<MemoryTx>({ group: 'ledger' }).handle({ topic: 'payments', codec: json<Payment>() }, (msg, ctx) => {
 *   ctx.tx.update<number>(`balance:${msg.value.account}`, (v = 0) => v + msg.value.cents);
 * });
 * const worker = createWorker(app, { store, reader: log, until: 'caught-up' });
 * await worker.start();
 * await worker.done;
 * ```
 */
export type { MemoryLogRecord } from './memory-log.js';
export { MemoryLog } from './memory-log.js';
export type { MemoryLogEntry } from './memory-store.js';
export { MemoryStore, MemoryTx } from './memory-store.js';
export { until } from './until.js';
