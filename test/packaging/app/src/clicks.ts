/** The function half of the packaging test's app: a batch handler writing one statement per batch. */
import { type App, type Batch, type HandlerContext, json } from '@oncely/core';
import { insertRows } from '@oncely/postgres-offsets';

export interface Click {
  id: string;
  page: string;
}

/** Adds a batch handler for `topic` that records every click in `<schema>.applied`. */
export function withClicks(app: App, topic: string, schema: string): App {
  return app.handleBatch({ topic, codec: json<Click>() }, async (batch: Batch<Click>, ctx: HandlerContext) => {
    const rows = batch.messages.map((m) => ({
      grp: ctx.group,
      source: 'function',
      topic: m.topic,
      offset: m.offset,
      item: m.value.id,
    }));
    await insertRows(ctx.tx, `${schema}.applied`, rows);
  });
}
