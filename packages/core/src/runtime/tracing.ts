/**
 * OpenTelemetry spans around each fetch, a batch's transaction and each handler call, through
 * `@opentelemetry/api` (an optional peer dependency: without it, or without an SDK registered by
 * the app, nothing is recorded and nothing is paid but a branch).
 *
 * - `oncely.fetch` (kind client, `messaging.operation.type` receive): one per partition of each
 *   fetch from Kafka, from the call to that partition's answer (the broker's long poll included),
 *   with the offset fetched (`oncely.offset.from`), the record count and their key and value bytes
 *   (`oncely.fetch.bytes`); an offset out of range sets `oncely.fetch.out_of_range`, a failed fetch
 *   the error status. Roots: a fetch serves no one record's trace.
 * - `oncely.batch` (kind consumer): one per transaction attempt, from BEGIN to COMMIT, with the
 *   partition, the offset range, the record count and the epoch. It links to the context of every
 *   record that carries one (`traceparent` header), so a batch shows where its records came from.
 * - `oncely.handle` (kind consumer): one per message for per-message handlers, one per batch for
 *   batch handlers, a child of the record's producer context when its headers carry one (the
 *   producer's trace continues into the handler) and linked to its batch; otherwise a child of the
 *   batch span. It is the active span while the handler runs, so the app's own spans nest in it.
 *
 * Attributes follow OpenTelemetry's messaging conventions (`messaging.system` kafka,
 * `messaging.destination.name`, `messaging.destination.partition.id`, `messaging.kafka.offset`,
 * `messaging.consumer.group.name`), plus `oncely.*` for what is oncely's own.
 */
import { createRequire } from 'node:module';
import type * as Otel from '@opentelemetry/api';
import type { FetchRequest, RawRecord } from '../reader/types.js';

const require = createRequire(import.meta.url);

let api: typeof Otel | null | undefined;

/** The API when installed (once per process), else null. */
function otel(): typeof Otel | null {
  if (api === undefined) {
    try {
      api = require('@opentelemetry/api') as typeof Otel;
    } catch {
      api = null;
    }
  }
  return api;
}

/** A carrier getter over Kafka headers (names may repeat: the first wins; values are bytes). */
function headersGetter(): Otel.TextMapGetter<RawRecord['headers']> {
  return {
    keys: (carrier) => carrier.map(([name]) => name),
    get: (carrier, key) => {
      const value = carrier.find(([name]) => name.toLowerCase() === key)?.[1];
      return value === null || value === undefined ? undefined : value.toString('utf8');
    },
  };
}

/** The producer's context of a record, or undefined when its headers carry none. */
function producerContext(o: typeof Otel, record: RawRecord): Otel.Context | undefined {
  if (record.headers.length === 0 || !record.headers.some(([name]) => name.toLowerCase() === 'traceparent')) return undefined;
  const ctx = o.propagation.extract(o.ROOT_CONTEXT, record.headers, headersGetter());
  return o.trace.getSpanContext(ctx) ? ctx : undefined;
}

/** What a batch span describes. */
export interface BatchSpanInfo {
  group: string;
  topic: string;
  partition: number;
  fromOffset: bigint;
  nextOffset: bigint;
  epoch: bigint;
  records: readonly RawRecord[];
}

/** A batch span in progress; `handle` runs one handler call in its own span. */
export interface BatchTrace {
  handle<T>(records: readonly RawRecord[], fn: () => Promise<T>): Promise<T>;
}

/** The trace of a batch when nothing is traced. */
export const NO_TRACE: BatchTrace = { handle: (_records, fn) => fn() };

function end(o: typeof Otel, span: Otel.Span, error: unknown): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : new Error(String(error)));
    span.setStatus({ code: o.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

/**
 * The tracer when OpenTelemetry is installed and an SDK registered, else null: checked per fetch
 * and per batch (an app may register its SDK after the worker started), without an allocation.
 */
function activeTracer(o: typeof Otel | null): Otel.Tracer | null {
  if (!o) return null;
  // No SDK registered (the API's proxy has no delegate): nothing would record; skip the work.
  const provider = o.trace.getTracerProvider() as { getDelegateTracer?: (name: string) => Otel.Tracer | undefined };
  if (provider.getDelegateTracer && provider.getDelegateTracer('oncely') === undefined) return null;
  return o.trace.getTracer('oncely');
}

/** The `oncely.fetch` spans of one fetch call, one per partition, each ended by its answer or its error. */
export interface FetchTrace {
  /** The partition's answer: its records (how many, their key and value bytes), or its offset out of range. */
  answered(topic: string, partition: number, records: number | 'out-of-range', bytes: number): void;
  failed(topic: string, partition: number, error: unknown): void;
  /** Ends the spans still open (the call was aborted, or answered without them). */
  close(): void;
}

/** Starts the spans of a fetch call; undefined (nothing allocated) without OpenTelemetry or an SDK. */
export function traceFetch(group: string, requests: readonly FetchRequest[]): FetchTrace | undefined {
  const o = otel();
  const tracer = activeTracer(o);
  if (!o || !tracer) return undefined;
  const spans = new Map<string, Otel.Span>();
  for (const r of requests) {
    const span = tracer.startSpan(
      'oncely.fetch',
      {
        kind: o.SpanKind.CLIENT,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.destination.name': r.topic,
          'messaging.destination.partition.id': String(r.partition),
          'messaging.consumer.group.name': group,
          'messaging.operation.type': 'receive',
          'oncely.offset.from': Number(r.offset),
        },
      },
      o.context.active(),
    );
    spans.set(`${r.topic}:${r.partition}`, span);
  }
  const take = (topic: string, partition: number) => {
    const k = `${topic}:${partition}`;
    const span = spans.get(k);
    spans.delete(k);
    return span;
  };
  return {
    answered(topic, partition, records, bytes) {
      const span = take(topic, partition);
      if (!span) return;
      if (records === 'out-of-range') span.setAttribute('oncely.fetch.out_of_range', true);
      else span.setAttributes({ 'messaging.batch.message_count': records, 'oncely.fetch.bytes': bytes });
      span.end();
    },
    failed(topic, partition, error) {
      const span = take(topic, partition);
      if (span) end(o, span, error);
    },
    close() {
      for (const span of spans.values()) span.end();
      spans.clear();
    },
  };
}

/** Runs one transaction attempt of a batch in an `oncely.batch` span (a no-op without OpenTelemetry). */
export async function traceBatch<T>(info: BatchSpanInfo, fn: (trace: BatchTrace) => Promise<T>): Promise<T> {
  const o = otel();
  const tracer = activeTracer(o);
  if (!o || !tracer) return fn(NO_TRACE);
  const common = {
    'messaging.system': 'kafka',
    'messaging.destination.name': info.topic,
    'messaging.destination.partition.id': String(info.partition),
    'messaging.consumer.group.name': info.group,
  };
  const links: Otel.Link[] = [];
  for (const r of info.records) {
    const ctx = producerContext(o, r);
    const sc = ctx && o.trace.getSpanContext(ctx);
    if (sc) links.push({ context: sc, attributes: { 'messaging.kafka.offset': Number(r.offset) } });
    if (links.length >= 128) break;
  }
  const span = tracer.startSpan(
    'oncely.batch',
    {
      kind: o.SpanKind.CONSUMER,
      links,
      attributes: {
        ...common,
        'messaging.operation.type': 'process',
        'messaging.batch.message_count': info.records.length,
        'oncely.offset.from': Number(info.fromOffset),
        'oncely.offset.next': Number(info.nextOffset),
        'oncely.epoch': Number(info.epoch),
      },
    },
    o.context.active(),
  );
  const batchCtx = o.trace.setSpan(o.context.active(), span);
  const trace: BatchTrace = {
    async handle(records, run) {
      const first = records[0];
      const parent = records.length === 1 && first ? producerContext(o, first) : undefined;
      const hspan = tracer.startSpan(
        'oncely.handle',
        {
          kind: o.SpanKind.CONSUMER,
          links: parent ? [{ context: span.spanContext() }] : [],
          attributes: {
            ...common,
            'messaging.operation.type': 'process',
            ...(records.length === 1 && first
              ? { 'messaging.kafka.offset': Number(first.offset) }
              : { 'messaging.batch.message_count': records.length }),
          },
        },
        parent ?? batchCtx,
      );
      let error: unknown;
      try {
        return await o.context.with(o.trace.setSpan(parent ?? batchCtx, hspan), run);
      } catch (e) {
        error = e;
        throw e;
      } finally {
        end(o, hspan, error);
      }
    },
  };
  let error: unknown;
  try {
    return await o.context.with(batchCtx, () => fn(trace));
  } catch (e) {
    error = e;
    throw e;
  } finally {
    end(o, span, error);
  }
}
