/**
 * Scenario 1, the Kafka read ceiling: a kafkajs consumer (fresh group, from the beginning) whose
 * eachBatch only counts. No processing, no commits. The window starts when the group is joined.
 *
 * Scenario 11 is the same consumer decoding every value with oncely's json() codec (what the
 * ledger's handler reads), and writing nothing: the ceiling of a worker that reads and parses on
 * one thread. What the ledger (7) spends beyond it is oncely's part: transactions, fence, handler.
 */
import { json } from '@oncely/core';
import { Kafka, logLevel } from 'kafkajs';
import type { ScenarioInput } from '../config.js';
import { startWindow, suffix, type Window } from '../measure.js';
import type { Outcome } from './types.js';

export async function kafkajsRaw(input: ScenarioInput, options: { parse?: boolean } = {}): Promise<Outcome> {
  const codec = options.parse ? json<{ cents: number }>() : undefined;
  let cents = 0;
  const kafka = new Kafka({ brokers: input.brokers, clientId: 'oncely-bench-raw', logLevel: logLevel.WARN });
  const consumer = kafka.consumer({ groupId: `oncely-bench-raw-${suffix()}`, allowAutoTopicCreation: false });
  let end: (() => Window) | undefined;
  let window: Window | undefined;
  let count = 0;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  consumer.on(consumer.events.GROUP_JOIN, () => {
    end ??= startWindow();
  });
  await consumer.connect();
  await consumer.subscribe({ topic: input.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (codec) {
        // Summed, so that the parse cannot be optimized away and is checked. The record is only named
        // in a codec's errors: the batch's first offset stands in for each (none is made per record).
        const where = { offset: BigInt(batch.firstOffset() ?? '0') } as never;
        for (const m of batch.messages) cents += codec.decode(m.value, where).cents;
      }
      count += batch.messages.length;
      if (count >= input.records && !window) {
        window = end!();
        finished();
      }
    },
  });
  await done;
  await consumer.disconnect();
  const ok = count === input.records && (!codec || cents === Number(input.totalCents));
  const parsed = codec ? `, ${cents} cents parsed (expected ${input.totalCents})` : '';
  return { records: count, ok, check: `${count} records read of ${input.records}${parsed}`, window: window! };
}
