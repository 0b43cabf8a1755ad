/**
 * OpenTelemetry spans of a real worker (real broker, real database), recorded by an in-memory
 * exporter: an `oncely.batch` span per transaction with the partition and offsets, an
 * `oncely.handle` span per message that continues the producer's trace from the record's
 * `traceparent` header (or is a child of its batch when there is none), and the handler's own
 * spans nested in it; an `oncely.fetch` span per partition of each fetch from Kafka, with the
 * offset fetched, the record count and the bytes.
 */

import { defineApp, json } from '@oncely/core';
import { context, propagation, type Span, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { createTopic, freshSchema, kafkaClient, randomName } from '../support/fixtures.js';
import { realWorker, until } from '../support/oncely.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

describe('OpenTelemetry spans', () => {
  it('batch and handler spans carry the coordinates, continue the producer trace and hold the app’s own spans', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('otel');
    const tracer = trace.getTracer('test-producer');
    // Records 0, 2, 4 carry a producer's trace context; 1, 3, 5 carry none.
    const producerSpans: Span[] = [];
    const messages = Array.from({ length: 6 }, (_, i) => {
      const headers: Record<string, string> = {};
      if (i % 2 === 0) {
        const span = tracer.startSpan(`produce ${i}`);
        producerSpans.push(span);
        propagation.inject(trace.setSpan(context.active(), span), headers);
        span.end();
      }
      return { value: JSON.stringify({ n: i }), headers };
    });
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic, messages });
    await producer.disconnect();

    const appTracer = trace.getTracer('test-app');
    const app = defineApp<Knex.Transaction>({ group: randomName('otel') }).handle(
      { topic, codec: json<{ n: number }>() },
      async (msg, ctx) => {
        await appTracer.startActiveSpan(`app.write ${msg.offset}`, async (span) => {
          await ctx.tx.raw('select 1');
          span.end();
        });
      },
    );
    const w = await realWorker(app, schema, { batchMaxRecords: 3 });
    await w.start();
    await until(() => w.progress()[0]?.nextOffset === 6n, 'every record applied');
    await w.stop();

    const spans = exporter.getFinishedSpans();
    const batches = spans.filter((s) => s.name === 'oncely.batch');
    const handles = spans.filter((s) => s.name === 'oncely.handle');
    expect(batches.length).toBeGreaterThanOrEqual(2);
    for (const b of batches) {
      expect(b.attributes).toMatchObject({
        'messaging.system': 'kafka',
        'messaging.destination.name': topic,
        'messaging.destination.partition.id': '0',
        'messaging.consumer.group.name': app.group,
      });
      expect(Number(b.attributes['oncely.offset.next'])).toBeGreaterThan(Number(b.attributes['oncely.offset.from']));
    }
    expect(handles.map((h) => Number(h.attributes['messaging.kafka.offset'])).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    const batchIds = new Set(batches.map((b) => b.spanContext().spanId));
    for (const h of handles) {
      const offset = Number(h.attributes['messaging.kafka.offset']);
      const parent = h.parentSpanContext;
      if (offset % 2 === 0) {
        // The producer's trace continues into the handler; the batch is a link.
        const p = producerSpans[offset / 2]!.spanContext();
        expect(h.spanContext().traceId).toBe(p.traceId);
        expect(parent?.spanId).toBe(p.spanId);
        expect(h.links.some((l) => batchIds.has(l.context.spanId))).toBe(true);
      } else {
        expect(batchIds.has(parent?.spanId ?? '')).toBe(true);
      }
      // The app's span nests in its handler span.
      const own = spans.find((s) => s.name === `app.write ${offset}`);
      expect(own?.parentSpanContext?.spanId).toBe(h.spanContext().spanId);
    }
    // Each batch links to the producer contexts of its records.
    const linked = batches.flatMap((b) => b.links.map((l) => l.context.spanId));
    for (const p of producerSpans) expect(linked).toContain(p.spanContext().spanId);
  });

  it('a fetch span per partition of each fetch: the offset fetched, the records and their bytes', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema('otelf');
    const values = Array.from({ length: 10 }, (_, i) => JSON.stringify({ n: i, pad: 'x'.repeat(i) }));
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic, messages: values.map((value, i) => ({ partition: i % 2, value })) });
    await producer.disconnect();
    const app = defineApp<Knex.Transaction>({ group: randomName('otelf') }).handle(
      { topic, codec: json<{ n: number }>() },
      async () => {},
    );
    const w = await realWorker(app, schema, { batchMaxRecords: 2 });
    await w.start();
    await until(() => w.progress().every((p) => p.nextOffset === 5n) && w.progress().length === 2, 'every record applied');
    await w.stop();

    const fetches = exporter
      .getFinishedSpans()
      .filter((s) => s.name === 'oncely.fetch' && s.attributes['messaging.destination.name'] === topic);
    for (const partition of [0, 1]) {
      const mine = fetches.filter((s) => s.attributes['messaging.destination.partition.id'] === String(partition));
      for (const f of mine) {
        expect(f.kind).toBe(SpanKind.CLIENT);
        expect(f.attributes).toMatchObject({
          'messaging.system': 'kafka',
          'messaging.operation.type': 'receive',
          'messaging.consumer.group.name': app.group,
        });
      }
      // Each fetch asks for the offset after the records of the one before: the spans chain, and
      // their counts and bytes (key and value) add up to the partition's records.
      const withRecords = mine
        .filter((f) => Number(f.attributes['messaging.batch.message_count']) > 0)
        .sort((a, b) => Number(a.attributes['oncely.offset.from']) - Number(b.attributes['oncely.offset.from']));
      expect(withRecords[0]?.attributes['oncely.offset.from']).toBe(0);
      let next = 0;
      let bytes = 0;
      for (const f of withRecords) {
        expect(f.attributes['oncely.offset.from']).toBe(next);
        next += Number(f.attributes['messaging.batch.message_count']);
        bytes += Number(f.attributes['oncely.fetch.bytes']);
      }
      expect(next).toBe(5);
      const expected = values.filter((_, i) => i % 2 === partition).reduce((a, v) => a + Buffer.byteLength(v), 0);
      expect(bytes).toBe(expected);
    }
  });
});
