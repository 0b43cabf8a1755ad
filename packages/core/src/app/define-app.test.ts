import 'reflect-metadata';
import { Container, inject, injectable } from 'inversify';
import { describe, expect, it } from 'vitest';
import { json, string } from '../codec/codecs.js';
import { ConfigError } from '../errors.js';
import { handles, handlesBatch, TRANSACTION } from './decorators.js';
import { defineApp } from './define-app.js';
import type { Message } from './types.js';

describe('defineApp', () => {
  it('registers function handlers per topic', () => {
    const app = defineApp({ group: 'g1' })
      .handle({ topic: 'a', codec: json<{ n: number }>() }, (msg) => {
        const n: number = msg.value.n;
        void n;
      })
      .handleBatch({ topic: 'b', codec: string() }, () => {});
    expect(app.topics).toEqual(['a', 'b']);
    expect(app.handlerFor('a')?.kind).toBe('message');
    expect(app.handlerFor('b')?.kind).toBe('batch');
  });

  it('refuses a second handler for a topic, bad names and a missing codec', () => {
    const app = defineApp({ group: 'g' }).handle({ topic: 't', codec: string() }, () => {});
    expect(() => app.handle({ topic: 't', codec: string() }, () => {})).toThrow(/already has a handler/);
    expect(() => defineApp({ group: 'bad group' })).toThrow(ConfigError);
    expect(() => app.handle({ topic: 'no/slash', codec: string() }, () => {})).toThrow(/valid Kafka topic/);
    // biome-ignore lint/suspicious/noExplicitAny: testing a JavaScript caller's mistake
    expect(() => app.handle({ topic: 'x', codec: undefined as any }, () => {})).toThrow(/needs a codec/);
    expect(() => defineApp({ group: 'empty' }).validate()).toThrow(/has no handlers/);
  });

  it('registers decorated classes and requires a container for them', () => {
    @handles('payments', { codec: json<{ cents: number }>() })
    @injectable()
    class PaymentHandler {
      constructor(@inject(TRANSACTION) readonly tx: unknown) {}
      handle(_msg: Message<{ cents: number }>) {}
    }
    @handlesBatch('clicks', { codec: string() })
    @injectable()
    class ClickHandler {
      handleBatch() {}
    }
    const app = defineApp({ group: 'g' }).register(PaymentHandler, ClickHandler);
    expect(app.handlerFor('payments')?.kind).toBe('message-class');
    expect(app.handlerFor('clicks')?.kind).toBe('batch-class');
    expect(() => app.validate()).toThrow(/has no container/);
    app.withContainer(new Container());
    expect(() => app.validate()).not.toThrow();
    class Plain {}
    expect(() => app.register(Plain)).toThrow(/no @handles/);
  });
});
