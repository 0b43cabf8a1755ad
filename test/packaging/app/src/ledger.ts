/**
 * The class half of the packaging test's app, written as a user would with inversify 8: a
 * repository that gets the batch's transaction injected, and a handler resolved per batch.
 */
import { type HandlerContext, handles, json, type Message, type MessageHandler, TRANSACTION } from '@oncely/core';
import { inject, injectable } from 'inversify';
import type { Knex } from 'knex';

export interface Payment {
  id: string;
  account: string;
  cents: number;
}

/** The schema of the app's own tables. */
export const APP_SCHEMA = Symbol.for('app.schema');

@injectable()
export class LedgerRepository {
  constructor(
    @inject(TRANSACTION) private readonly tx: Knex.Transaction,
    @inject(APP_SCHEMA) private readonly schema: string,
  ) {}

  async apply(msg: Message<Payment>, group: string): Promise<void> {
    await this.tx.raw(`insert into ${this.schema}.applied (grp, source, topic, "offset", item) values (?, 'class', ?, ?, ?)`, [
      group,
      msg.topic,
      msg.offset.toString(),
      msg.value.id,
    ]);
  }
}

/** A class handler for `topic` (a factory: the test names its topics at random). */
export function paymentHandler(topic: string) {
  @handles(topic, { codec: json<Payment>() })
  @injectable()
  class PaymentHandler implements MessageHandler<Payment> {
    constructor(@inject(LedgerRepository) private readonly ledger: LedgerRepository) {}
    handle(msg: Message<Payment>, ctx: HandlerContext): Promise<void> {
      return this.ledger.apply(msg, ctx.group);
    }
  }
  return PaymentHandler;
}
