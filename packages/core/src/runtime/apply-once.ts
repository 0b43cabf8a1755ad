import type { App } from '../app/define-app.js';
import type { HandlerContext } from '../app/types.js';
import { ConfigError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import type { RawRecord } from '../reader/types.js';
import type { TransactionalStore } from '../store/types.js';
import { decodeRecords, invokeHandler } from './handler-invoker.js';

/** A record to apply outside the normal flow (a dead letter being requeued). */
export interface DetachedRecord {
  topic: string;
  partition: number;
  record: RawRecord;
}

/**
 * Runs the app's current handler for the record's topic on one record, in one transaction of the
 * store that does not move any offset; `then(tx)` runs in the same transaction (deleting the
 * dead-letter row, so the record is applied exactly once again or not at all). A failure rolls it
 * all back and is thrown (RecordFailedError naming the record).
 */
export async function applyRecordOnce<Tx>(
  app: App<Tx>,
  store: TransactionalStore<Tx>,
  input: DetachedRecord,
  options: { then?: (tx: Tx) => Promise<void>; logger?: Logger; workerId?: string; signal?: AbortSignal } = {},
): Promise<void> {
  const def = app.handlerFor(input.topic);
  if (!def) throw new ConfigError(`App '${app.group}' has no handler for topic '${input.topic}'`);
  if (!store.transaction) throw new ConfigError('This store has no transaction(): it cannot apply a record outside a batch');
  const messages = decodeRecords(def, input.topic, input.partition, [input.record]);
  // A dead letter was never applied, unless a rewind brought its record back and it succeeded then.
  const { offset } = input.record;
  const isReplay = store.appliedRanges
    ? (await store.appliedRanges({ group: app.group, topic: input.topic, partition: input.partition }, offset, offset + 1n))
        .length > 0
    : false;
  await store.transaction(async (tx) => {
    const ctx: HandlerContext<Tx> = {
      tx,
      signal: options.signal ?? new AbortController().signal,
      logger: options.logger ?? silentLogger,
      isReplay,
      group: app.group,
      workerId: options.workerId ?? 'requeue',
      attempt: 1,
    };
    await invokeHandler(
      def,
      app.container,
      { topic: input.topic, partition: input.partition, messages, highWatermark: -1n },
      ctx,
      () => isReplay,
    );
    await options.then?.(tx);
  });
}
