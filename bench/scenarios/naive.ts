/**
 * Scenario 3, naive at-least-once: kafkajs eachMessage (Kafka auto-commit on), one INSERT per
 * record in autocommit on one connection. Runs `naiveRecords` records (its rate is the point) and
 * then stops. The window starts when the group is joined.
 */
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import type { ScenarioInput } from '../config.js';
import { startWindow, suffix, type Window } from '../measure.js';
import { createRowsTable, dropSchema } from './tables.js';
import type { Outcome } from './types.js';

export async function naive(input: ScenarioInput): Promise<Outcome> {
  const limit = Math.min(input.naiveRecords, input.records);
  const client = new pg.Client({ connectionString: input.databaseUrl, application_name: 'oncely-bench-naive' });
  await client.connect();
  const schema = `bench_naive_${suffix()}`;
  const kafka = new Kafka({ brokers: input.brokers, clientId: 'oncely-bench-naive', logLevel: logLevel.WARN });
  const consumer = kafka.consumer({ groupId: `oncely-bench-naive-${suffix()}`, allowAutoTopicCreation: false });
  try {
    const table = await createRowsTable(client, schema);
    const sql = `insert into ${table} (topic, partition, "offset", key, value) values ($1, $2, $3, $4, $5)`;
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
      autoCommit: true,
      eachMessage: async ({ topic, partition, message, pause }) => {
        if (count >= limit) {
          pause();
          return;
        }
        const value = JSON.parse(message.value!.toString('utf8')) as unknown;
        await client.query(sql, [topic, partition, message.offset, message.key?.toString('utf8'), JSON.stringify(value)]);
        count++;
        if (count === limit) {
          window = end!();
          finished();
        }
      },
    });
    await done;
    await consumer.disconnect();
    const { rows } = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
    const n = Number(rows[0]!.n);
    return {
      records: count,
      ok: n === count && count === limit,
      check: `${n} rows for ${count} records handled`,
      window: window!,
    };
  } finally {
    await dropSchema(client, schema).catch(() => {});
    await client.end();
  }
}
