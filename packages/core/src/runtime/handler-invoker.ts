import { HANDLER_CONTEXT, TRANSACTION } from '../app/decorators.js';
import type { Batch, HandlerContainer, HandlerContext, HandlerDefinition, Message, Newable } from '../app/types.js';
import { CodecError, ConfigError, OncelyError, RecordFailedError, toError } from '../errors.js';
import type { RawRecord } from '../reader/types.js';
import { type BatchTrace, NO_TRACE } from './tracing.js';

/**
 * A decoded record. `id`, `key` and `timestamp` are computed on first use: most handlers never read them,
 * and at tens of thousands of records a second every allocation shows up as garbage collection.
 */
class DecodedMessage<T> implements Message<T> {
  readonly offset: bigint;
  readonly headers: RawRecord['headers'];
  #timestamp: Date | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly raw: RawRecord,
    readonly value: T,
  ) {
    this.offset = raw.offset;
    this.headers = raw.headers;
  }

  /** Read from the record when asked: a reader's record makes its key's Buffer on each read (see WireRecord). */
  get key(): Buffer | null {
    return this.raw.key;
  }

  get id(): string {
    return `${this.topic}/${this.partition}/${this.offset}`;
  }

  get timestamp(): Date {
    this.#timestamp ??= new Date(this.raw.timestamp);
    return this.#timestamp;
  }

  /** Plain-object form (JSON.stringify, logging): getters are not enumerable. */
  toJSON() {
    return {
      topic: this.topic,
      partition: this.partition,
      offset: `${this.offset}`,
      id: this.id,
      timestamp: this.timestamp,
      value: this.value,
    };
  }
}

/** Decodes raw records with the handler's codec; a failure names the record. */
export function decodeRecords<Tx>(
  def: HandlerDefinition<Tx>,
  topic: string,
  partition: number,
  records: readonly RawRecord[],
): Message<unknown>[] {
  const out: Message<unknown>[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    let value: unknown;
    try {
      value = def.codec.decode(r.value, r);
    } catch (e) {
      const cause = OncelyError.is(e, 'CODEC_FAILED')
        ? e
        : new CodecError(`${def.codec.name} codec failed: ${toError(e).message}`, { cause: e });
      throw new RecordFailedError(topic, partition, r.offset, cause);
    }
    out[i] = new DecodedMessage(topic, partition, r, value);
  }
  return out;
}

/** Marks what the placeholders of a start-up resolution throw: the class resolved, it used them early. */
const PLACEHOLDER_USED = Symbol('oncely.placeholder-used');

/** A stand-in for ctx.tx or ctx while a class is resolved at start: any use of it throws PLACEHOLDER_USED. */
function placeholder(what: string): unknown {
  const used = (): never => {
    throw Object.assign(new Error(`${what} is not available while the worker starts`), { [PLACEHOLDER_USED]: true });
  };
  return new Proxy(() => {}, {
    // `then` and symbols are what containers and promises probe; anything else is a use.
    get: (_t, p) => (typeof p === 'symbol' || p === 'then' ? undefined : used()),
    apply: used,
    construct: used,
  });
}

function bindingError(def: HandlerDefinition<unknown>, e: unknown): ConfigError {
  const target = (def as { target?: { name?: string } }).target;
  return new ConfigError(
    `Handler class ${target?.name ?? '?'} of topic '${def.topic}' cannot be resolved from the app's container: ` +
      `${toError(e).message}. Bind what it injects (container.bind(…)) before the worker starts.`,
    { cause: e },
  );
}

/** A per-batch child container with the batch's transaction and context bound, and the handler class. */
function childContainer<Tx>(def: HandlerDefinition<Tx>, container: HandlerContainer, tx: unknown, ctx: unknown) {
  // Made by the parent's own class: containers of two inversify copies reject each other.
  const ContainerOfParent = container.constructor as new (options: { parent: HandlerContainer }) => HandlerContainer;
  const child = new ContainerOfParent({ parent: container });
  child.bind(TRANSACTION).toConstantValue(tx);
  child.bind(HANDLER_CONTEXT).toConstantValue(ctx);
  if (def.kind === 'message-class' || def.kind === 'batch-class') {
    if (!child.isBound(def.target)) child.bind(def.target).toSelf();
  }
  return child;
}

/**
 * Resolves a class handler once, as the worker starts, so that a binding missing from the
 * container fails start() naming the class and the binding, not the first record. The batch's
 * transaction and context are stand-ins: a constructor that uses them ends the check (it resolved).
 */
export function checkHandlerResolves<Tx>(def: HandlerDefinition<Tx>, container: HandlerContainer | undefined): void {
  if ((def.kind !== 'message-class' && def.kind !== 'batch-class') || !container) return;
  try {
    const child = childContainer(def, container, placeholder('ctx.tx'), placeholder('the handler context'));
    child.get<unknown>(def.target);
  } catch (e) {
    if (typeof e === 'object' && e !== null && (e as { [PLACEHOLDER_USED]?: unknown })[PLACEHOLDER_USED] === true) return;
    throw bindingError(def as HandlerDefinition<unknown>, e);
  }
}

/**
 * Runs the topic's handler over one batch inside the batch's transaction. Class handlers are
 * resolved from a per-batch child container in which TRANSACTION and HANDLER_CONTEXT are bound,
 * so a repository class written once gets the current transaction injected.
 */
export async function invokeHandler<Tx>(
  def: HandlerDefinition<Tx>,
  container: HandlerContainer | undefined,
  batch: Batch<unknown>,
  ctx: HandlerContext<Tx>,
  /** Whether the record at this offset was applied before in this group. */
  isReplay: (offset: bigint) => boolean,
  /** The batch's records, one per message, and its span (each handler call gets its own). */
  raw: readonly RawRecord[] = [],
  trace: BatchTrace = NO_TRACE,
  /** Told the offset of each record before its handler runs (message handlers). */
  onRecord?: (offset: bigint) => void,
): Promise<void> {
  const perMessage = async (handle: (m: Message<unknown>, c: HandlerContext<Tx>) => Promise<void> | void) => {
    for (let i = 0; i < batch.messages.length; i++) {
      const m = batch.messages[i]!;
      onRecord?.(m.offset);
      try {
        // The batch context says whether any record is a replay; only replayed records keep true.
        const c = !ctx.isReplay || isReplay(m.offset) ? ctx : { ...ctx, isReplay: false };
        const record = raw[i];
        await (record ? trace.handle([record], async () => handle(m, c)) : handle(m, c));
      } catch (e) {
        throw e instanceof RecordFailedError ? e : new RecordFailedError(batch.topic, batch.partition, m.offset, e);
      }
    }
  };
  const wholeBatch = async (fn: () => Promise<void> | void) => {
    try {
      await (raw.length > 0 ? trace.handle(raw, async () => fn()) : fn());
    } catch (e) {
      throw e instanceof RecordFailedError ? e : new RecordFailedError(batch.topic, batch.partition, undefined, e);
    }
  };
  switch (def.kind) {
    case 'message':
      return perMessage(def.fn);
    case 'batch':
      return wholeBatch(() => def.fn(batch, ctx));
    case 'message-class':
    case 'batch-class': {
      const child = childContainer(def, container!, ctx.tx, ctx);
      // A binding that went missing after start: not the record's fault (a ConfigError stops the partition).
      const resolve = <T>(target: Newable<T>): T => {
        try {
          return child.get(target);
        } catch (e) {
          throw bindingError(def as HandlerDefinition<unknown>, e);
        }
      };
      if (def.kind === 'message-class') {
        const instance = resolve(def.target);
        return perMessage((m, c) => instance.handle(m, c));
      }
      const instance = resolve(def.target);
      return wholeBatch(() => instance.handleBatch(batch, ctx));
    }
  }
}
