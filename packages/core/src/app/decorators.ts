import type { Codec } from '../codec/types.js';
import { ConfigError } from '../errors.js';
import type { RetryPolicy } from '../policy/retry-policy.js';
import type { BatchHandler, MessageHandler, Newable } from './types.js';

/** What `@handles` / `@handlesBatch` recorded on a class. */
export interface HandlerClassMetadata {
  mode: 'message' | 'batch';
  topic: string;
  codec: Codec<unknown>;
  retry?: RetryPolicy;
}

// A WeakMap keeps the metadata off the class and needs no reflect-metadata.
const registry = new WeakMap<Function, HandlerClassMetadata>();

/**
 * Marks a class as the handler of one topic, one record at a time. Combine with `@injectable()`
 * and register the class with `app.register(...)`; its dependencies come from the app's
 * container, and `@inject(TRANSACTION)` / `@inject(HANDLER_CONTEXT)` give the current batch's.
 */
export function handles<T>(topic: string, options: { codec: Codec<T>; retry?: RetryPolicy }) {
  return <C extends Newable<MessageHandler<T, never>>>(target: C): C => {
    if (typeof target.prototype.handle !== 'function') {
      throw new ConfigError(`@handles('${topic}') is on ${target.name}, which has no handle(message, ctx) method`);
    }
    registry.set(target, { mode: 'message', topic, codec: options.codec as Codec<unknown>, retry: options.retry });
    return target;
  };
}

/** Marks a class as the handler of one topic, a batch at a time (`handleBatch(batch, ctx)`). */
export function handlesBatch<T>(topic: string, options: { codec: Codec<T>; retry?: RetryPolicy }) {
  return <C extends Newable<BatchHandler<T, never>>>(target: C): C => {
    if (typeof target.prototype.handleBatch !== 'function') {
      throw new ConfigError(`@handlesBatch('${topic}') is on ${target.name}, which has no handleBatch(batch, ctx) method`);
    }
    registry.set(target, { mode: 'batch', topic, codec: options.codec as Codec<unknown>, retry: options.retry });
    return target;
  };
}

/** The metadata a decorator recorded, or undefined for an undecorated class. */
export function handlerMetadata(target: Function): HandlerClassMetadata | undefined {
  return registry.get(target);
}

/** Injection token of the current batch's transaction (bound in the per-batch child container). */
export const TRANSACTION: unique symbol = Symbol.for('oncely.transaction');
/** Injection token of the current batch's HandlerContext. */
export const HANDLER_CONTEXT: unique symbol = Symbol.for('oncely.handlerContext');
