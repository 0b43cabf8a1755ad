/**
 * Scenario 9, the Kafka read ceiling of @platformatic/kafka, beside kafkajs's (scenario 1): the
 * library's own consumer (fresh group, from the beginning, no deserializers, no commits) whose
 * stream only counts. The window starts when the stream is there (the group is joined).
 */
import { Consumer } from '@platformatic/kafka';
import type { ScenarioInput } from '../config.js';
import { startWindow, suffix, type Window } from '../measure.js';
import type { Outcome } from './types.js';

export async function platformaticRaw(input: ScenarioInput): Promise<Outcome> {
  const consumer = new Consumer({
    groupId: `oncely-bench-platformatic-raw-${suffix()}`,
    clientId: 'oncely-bench-platformatic-raw',
    bootstrapBrokers: input.brokers,
  });
  let count = 0;
  let window: Window | undefined;
  try {
    const stream = await consumer.consume({ topics: [input.topic], mode: 'earliest', autocommit: false });
    const end = startWindow();
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('data', () => {
        count++;
        if (count >= input.records && !window) {
          window = end();
          resolve();
        }
      });
    });
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  const ok = count === input.records;
  return { records: count, ok, check: `${count} records read of ${input.records}`, window: window! };
}
