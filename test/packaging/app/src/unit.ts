/** A unit test as the app would write one: its handler over oncely's in-memory log and store. */
import { createWorker, defineApp, json } from '@oncely/core';
import { MemoryLog, MemoryStore, type MemoryTx } from '@oncely/core/testing';

interface Payment {
  account: string;
  cents: number;
}

const log = new MemoryLog().createTopic('payments', 1);
log.append('payments', 0, [{ value: JSON.stringify({ account: 'a', cents: 5 }) }, { value: '{"account":"a","cents":7}' }]);
const store = new MemoryStore();
const app = defineApp<MemoryTx>({ group: 'unit' }).handle({ topic: 'payments', codec: json<Payment>() }, (msg, ctx) => {
  ctx.tx.update<number>(`balance:${msg.value.account}`, (v = 0) => v + msg.value.cents);
});
const worker = createWorker(app, { store, reader: log, until: 'caught-up' });
await worker.start();
await worker.done;
console.log(`balance:a=${store.data.get('balance:a')}`);
