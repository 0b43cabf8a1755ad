/**
 * The ledger example: payments move money between accounts. Applying one twice would visibly
 * double it, so the balances prove exactly-once: `balance = balance + amount` is not idempotent.
 *
 * The handler is a class resolved from an inversify container; the repository it uses receives
 * the batch's transaction through `@inject(TRANSACTION)`, so it is written once and always writes
 * inside the transaction that also advances the stored offset.
 */
import 'reflect-metadata';
import { defineApp, handles, json, type Message, type MessageHandler, TRANSACTION } from '@oncely/core';
import '@oncely/postgres-offsets';
import { Container, inject, injectable } from 'inversify';
import type { Knex } from 'knex';

/** A payment as produced to Kafka. */
export interface Payment {
  /** Unique per payment; the audit counts applications by it. */
  id: string;
  account: string;
  cents: number;
}

const isPayment = {
  parse(v: unknown): Payment {
    const p = v as Partial<Payment>;
    if (typeof p?.id !== 'string' || typeof p.account !== 'string' || !Number.isSafeInteger(p.cents)) {
      throw new Error('expected { id: string, account: string, cents: integer }');
    }
    return p as Payment;
  },
};

/** Where the ledger's tables live; validated because it becomes part of SQL text. */
export function ledgerSchema(name = process.env.LEDGER_SCHEMA ?? 'ledger'): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`LEDGER_SCHEMA must be a plain identifier; got ${name}`);
  return name;
}

/** Creates the ledger's tables (idempotent). */
export async function createLedgerTables(knex: Knex, schema: string): Promise<void> {
  await knex.raw(`create schema if not exists ${schema}`);
  await knex.raw(`create table if not exists ${schema}.balances (account text primary key, cents bigint not null)`);
  // No unique key on purpose: a duplicate application must be visible to the audit, not rejected.
  await knex.raw(`create table if not exists ${schema}.applied (
    id bigserial primary key, topic text not null, partition int not null, "offset" bigint not null,
    payment_id text not null, cents bigint not null, applied_at timestamptz not null default now())`);
}

export const LEDGER_SCHEMA = Symbol.for('ledger.schema');

/** The repository: every write goes through the current batch's transaction. */
@injectable()
export class LedgerRepository {
  constructor(
    @inject(TRANSACTION) private readonly tx: Knex.Transaction,
    @inject(LEDGER_SCHEMA) private readonly schema: string,
  ) {}

  async apply(msg: Message<Payment>): Promise<void> {
    const { account, cents, id } = msg.value;
    await this.tx.raw(
      `with a as (insert into ${this.schema}.applied (topic, partition, "offset", payment_id, cents) values (?, ?, ?, ?, ?))
       insert into ${this.schema}.balances (account, cents) values (?, ?)
       on conflict (account) do update set cents = balances.cents + excluded.cents`,
      [msg.topic, msg.partition, msg.offset.toString(), id, cents, account, cents],
    );
  }
}

/** Builds the ledger app for a topic (tests and the demo use their own topic and group). */
export function createLedgerApp(options: {
  topic: string;
  group: string;
  schema?: string;
  onApply?: (msg: Message<Payment>) => Promise<void> | void;
}) {
  @handles(options.topic, { codec: json<Payment>({ schema: isPayment }) })
  @injectable()
  class PaymentHandler implements MessageHandler<Payment> {
    constructor(@inject(LedgerRepository) private readonly ledger: LedgerRepository) {}
    async handle(msg: Message<Payment>): Promise<void> {
      await this.ledger.apply(msg);
      await options.onApply?.(msg);
    }
  }
  const container = new Container();
  container.bind(LEDGER_SCHEMA).toConstantValue(ledgerSchema(options.schema));
  container.bind(LedgerRepository).toSelf();
  return defineApp({ group: options.group, container }).register(PaymentHandler);
}

/** For `oncely run`: topic, group and schema from LEDGER_TOPIC, LEDGER_GROUP, LEDGER_SCHEMA. */
export default createLedgerApp({
  topic: process.env.LEDGER_TOPIC ?? 'payments',
  group: process.env.LEDGER_GROUP ?? 'ledger',
});
