import type { Codec } from '../codec/types.js';
import { ConfigError } from '../errors.js';
import { validateRetryPolicy } from '../policy/retry-policy.js';
import { handlerMetadata } from './decorators.js';
import type {
  BatchHandlerFn,
  DefaultTx,
  HandlerContainer,
  HandlerDefinition,
  HandlerOptions,
  MessageHandlerFn,
  Newable,
} from './types.js';

const groupPattern = /^[A-Za-z0-9._-]{1,200}$/;
const topicPattern = /^[A-Za-z0-9._-]{1,249}$/;

/** Options of {@link defineApp}. */
export interface AppOptions {
  /** The consumer group: positions are kept per group. Letters, digits, `.`, `_`, `-`. */
  group: string;
  /** The inversify container class handlers are resolved from (may also be set with `withContainer`). */
  container?: HandlerContainer;
}

/**
 * An application: a consumer group and its handlers, one per topic. Build it with
 * {@link defineApp}; hand it to `createWorker`.
 */
export class App<Tx = DefaultTx> {
  readonly group: string;
  #container: HandlerContainer | undefined;
  readonly #handlers = new Map<string, HandlerDefinition<Tx>>();

  constructor(options: AppOptions) {
    if (typeof options?.group !== 'string' || !groupPattern.test(options.group)) {
      throw new ConfigError(
        `defineApp: group must be 1-200 letters, digits, '.', '_' or '-'; got ${JSON.stringify(options?.group)}`,
      );
    }
    this.group = options.group;
    this.#container = options.container;
  }

  /** Handles one record at a time; all records of a fetched batch still share one transaction. */
  handle<T>(options: HandlerOptions<T>, fn: MessageHandlerFn<T, Tx>): this {
    return this.#add({
      kind: 'message',
      topic: options.topic,
      codec: options.codec as Codec<unknown>,
      retry: options.retry,
      fn: fn as MessageHandlerFn<unknown, Tx>,
    });
  }

  /** Handles a batch of one partition's records in one call (bulk writes). */
  handleBatch<T>(options: HandlerOptions<T>, fn: BatchHandlerFn<T, Tx>): this {
    return this.#add({
      kind: 'batch',
      topic: options.topic,
      codec: options.codec as Codec<unknown>,
      retry: options.retry,
      fn: fn as BatchHandlerFn<unknown, Tx>,
    });
  }

  /** Registers classes decorated with `@handles` / `@handlesBatch`, resolved per batch from the container. */
  register(...classes: Newable<unknown>[]): this {
    for (const target of classes) {
      const meta = handlerMetadata(target);
      if (!meta) {
        throw new ConfigError(
          `register(${target?.name ?? target}): the class has no @handles(topic, { codec }) or @handlesBatch decorator`,
        );
      }
      // biome-ignore lint/suspicious/noExplicitAny: the decorator checked the method exists
      const t = target as Newable<any>;
      this.#add(
        meta.mode === 'message'
          ? { kind: 'message-class', topic: meta.topic, codec: meta.codec, retry: meta.retry, target: t }
          : { kind: 'batch-class', topic: meta.topic, codec: meta.codec, retry: meta.retry, target: t },
      );
    }
    return this;
  }

  /** Sets the inversify container that class handlers and their dependencies come from. */
  withContainer(container: HandlerContainer): this {
    this.#container = container;
    return this;
  }

  get container(): HandlerContainer | undefined {
    return this.#container;
  }

  /** The handler of a topic. */
  handlerFor(topic: string): HandlerDefinition<Tx> | undefined {
    return this.#handlers.get(topic);
  }

  /** The topics this app reads, in registration order. */
  get topics(): string[] {
    return [...this.#handlers.keys()];
  }

  /** Checks the app is complete before a worker starts (throws ConfigError). */
  validate(): void {
    if (this.#handlers.size === 0)
      throw new ConfigError(`App '${this.group}' has no handlers: add one with .handle(), .handleBatch() or .register()`);
    for (const h of this.#handlers.values()) {
      if ((h.kind === 'message-class' || h.kind === 'batch-class') && !this.#container) {
        throw new ConfigError(
          `App '${this.group}' registers class ${h.target.name} but has no container: pass defineApp({ container }) or call .withContainer(container)`,
        );
      }
    }
  }

  #add(def: HandlerDefinition<Tx>): this {
    if (typeof def.topic !== 'string' || !topicPattern.test(def.topic)) {
      throw new ConfigError(
        `Handler topic must be a valid Kafka topic name (letters, digits, '.', '_', '-'); got ${JSON.stringify(def.topic)}`,
      );
    }
    if (!def.codec || typeof def.codec.decode !== 'function') {
      throw new ConfigError(`Handler for '${def.topic}' needs a codec: json<T>(), string(), raw() or your own { name, decode }`);
    }
    validateRetryPolicy(def.retry, def.topic);
    if (this.#handlers.has(def.topic)) {
      throw new ConfigError(
        `Topic '${def.topic}' already has a handler in group '${this.group}': one handler per topic per group`,
      );
    }
    this.#handlers.set(def.topic, def);
    return this;
  }
}

/** Declares an app: `defineApp({ group: 'ledger' }).handle({ topic, codec: json<T>() }, fn)`. */
export function defineApp<Tx = DefaultTx>(options: AppOptions): App<Tx> {
  return new App<Tx>(options);
}
