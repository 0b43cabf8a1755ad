import { HANDLER_CONTEXT, TRANSACTION } from '../app/decorators.js';
import type { Batch, HandlerContainer, HandlerContext, HandlerDefinition, Message, Newable } from '../app/types.js';
import type { Codec } from '../codec/types.js';
import { CodecError, ConfigError, OncelyError, RecordFailedError, toError } from '../errors.js';
import type { RawRecord } from '../reader/types.js';
import { type BatchTrace, NO_TRACE } from './tracing.js';

/**
 * A decoded record. `id`, `key` and `timestamp` are computed on first use: most handlers never read them,
 * and at tens of thousands of records a second every allocation shows up as garbage collection.
 */
abstract class RecordMessage<T> implements Message<T> {
  readonly offset: bigint;
  readonly headers: RawRecord['headers'];
  #timestamp: Date | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly raw: RawRecord,
  ) {
    this.offset = raw.offset;
    this.headers = raw.headers;
  }

  abstract readonly value: T;

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
      value: this.jsonValue(),
    };
  }

  protected jsonValue(): unknown {
    return this.value;
  }
}

/** A record decoded before its handler ran. */
class DecodedMessage<T> extends RecordMessage<T> {
  constructor(
    topic: string,
    partition: number,
    raw: RawRecord,
    readonly value: T,
  ) {
    super(topic, partition, raw);
  }
}

/**
 * A record of a lazy codec ({@link Codec.lazy}): its value is decoded when the handler first reads
 * `value`, and kept. A value that cannot be decoded throws the same RecordFailedError from that read
 * (every read), naming the record, so the failure policy treats it as it treats an eager codec's.
 */
class LazyMessage<T> extends RecordMessage<T> {
  #decoded = false;
  #value: T | undefined;
  #error: RecordFailedError | undefined;

  constructor(
    topic: string,
    partition: number,
    raw: RawRecord,
    readonly codec: Codec<unknown>,
  ) {
    super(topic, partition, raw);
  }

  get value(): T {
    if (this.#decoded) return this.#value as T;
    if (this.#error) throw this.#error;
    try {
      this.#value = this.codec.decode(this.raw.value, this.raw) as T;
    } catch (e) {
      this.#error = codecFailure(this.codec, this.topic, this.partition, this.raw.offset, e);
      throw this.#error;
    }
    this.#decoded = true;
    return this.#value;
  }

  /** Logging a message must not throw: an undecodable value is shown as its error. */
  protected override jsonValue(): unknown {
    try {
      return this.value;
    } catch (e) {
      return { undecodable: toError(e instanceof RecordFailedError ? e.cause : e).message };
    }
  }
}

/** A codec's failure as the record's: a RecordFailedError naming it, with a CodecError as its cause. */
function codecFailure(codec: Codec<unknown>, topic: string, partition: number, offset: bigint, e: unknown): RecordFailedError {
  const cause = OncelyError.is(e, 'CODEC_FAILED')
    ? e
    : new CodecError(`${codec.name} codec failed: ${toError(e).message}`, { cause: e });
  return new RecordFailedError(topic, partition, offset, cause);
}

/**
 * Decodes raw records with the handler's codec; a failure names the record. A lazy codec's records
 * are decoded when the handler reads their values (see {@link Codec.lazy}).
 */
export function decodeRecords<Tx>(
  def: HandlerDefinition<Tx>,
  topic: string,
  partition: number,
  records: readonly RawRecord[],
): Message<unknown>[] {
  const out: Message<unknown>[] = new Array(records.length);
  const { codec } = def;
  if (codec.lazy === true) {
    for (let i = 0; i < records.length; i++) out[i] = new LazyMessage(topic, partition, records[i]!, codec);
    return out;
  }
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    let value: unknown;
    try {
      value = codec.decode(r.value, r);
    } catch (e) {
      throw codecFailure(codec, topic, partition, r.offset, e);
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
