/**
 * Scenario 1, the Kafka read ceiling: a kafkajs consumer (fresh group, from the beginning) whose
 * eachBatch only counts. No processing, no commits. The window starts when the group is joined.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { ScenarioInput } from '../config.js';
import { startWindow, suffix, type Window } from '../measure.js';
import type { Outcome } from './types.js';

export async function kafkajsRaw(input: ScenarioInput): Promise<Outcome> {
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
      count += batch.messages.length;
      if (count >= input.records && !window) {
        window = end!();
        finished();
      }
    },
  });
  await done;
  await consumer.disconnect();
  const ok = count === input.records;
  return { records: count, ok, check: `${count} records read of ${input.records}`, window: window! };
}
