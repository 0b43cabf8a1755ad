/**
 * Type tests: checked by `pnpm typecheck` (a wrong type fails it), and run as tests so that the
 * assertions at least execute. `@ts-expect-error` lines fail the typecheck when they stop erring.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { json, type raw, string } from '../codec/codecs.js';
import type { Codec, CodecValue } from '../codec/types.js';
import { ConfigError } from '../errors.js';
import type { MemoryTx } from '../testing/memory-store.js';
import { handles, handlesBatch } from './decorators.js';
import { defineApp } from './define-app.js';
import type { Batch, HandlerContext, Message, MessageHandler } from './types.js';

interface Payment {
  account: string;
  cents: number;
}

describe('types', () => {
  it('json<T>() types the value; string() and raw() type theirs', () => {
    expectTypeOf(json<Payment>()).toEqualTypeOf<Codec<Payment>>();
    expectTypeOf<CodecValue<ReturnType<typeof json<Payment>>>>().toEqualTypeOf<Payment>();
    expectTypeOf(json()).toEqualTypeOf<Codec<unknown>>();
    expectTypeOf<CodecValue<ReturnType<typeof string>>>().toEqualTypeOf<string>();
    expectTypeOf<CodecValue<ReturnType<typeof raw>>>().toEqualTypeOf<Buffer | null>();
  });

  it('handle() and handleBatch() type the message, the batch and ctx.tx from the codec and the app', () => {
    defineApp<MemoryTx>({ group: 'g' })
      .handle({ topic: 'payments', codec: json<Payment>() }, (msg, ctx) => {
        expectTypeOf(msg).toEqualTypeOf<Message<Payment>>();
        expectTypeOf(msg.value.cents).toEqualTypeOf<number>();
        expectTypeOf(msg.offset).toEqualTypeOf<bigint>();
        expectTypeOf(ctx).toEqualTypeOf<HandlerContext<MemoryTx>>();
        expectTypeOf(ctx.tx).toEqualTypeOf<MemoryTx>();
        // @ts-expect-error a Payment has no `amount`
        void msg.value.amount;
      })
      .handleBatch({ topic: 'names', codec: string() }, (batch) => {
        expectTypeOf(batch).toEqualTypeOf<Batch<string>>();
        expectTypeOf(batch.messages[0]!.value).toEqualTypeOf<string>();
      });
    // @ts-expect-error a handler's message type must match its codec
    defineApp({ group: 'g' }).handle({ topic: 't', codec: string() }, (msg: Message<number>) => void msg);
  });

  it('@handles and @handlesBatch accept only classes with the matching method and value type', () => {
    @handles('payments', { codec: json<Payment>() })
    class PaymentHandler implements MessageHandler<Payment> {
      handle(msg: Message<Payment>) {
        void msg.value.account;
      }
    }
    void PaymentHandler;

    // Refused by the types, and at run time too (for JavaScript callers).
    expect(() => {
      // @ts-expect-error @handles needs a handle(message, ctx) method
      @handles('payments', { codec: json<Payment>() })
      class NoHandle {
        run() {}
      }
      void NoHandle;
    }).toThrow(ConfigError);
    expect(() => {
      // @ts-expect-error @handlesBatch needs handleBatch(batch, ctx)
      @handlesBatch('payments', { codec: json<Payment>() })
      class WrongMethod {
        handle() {}
      }
      void WrongMethod;
    }).toThrow(ConfigError);
  });
});
