import { describe, expect, it } from 'vitest';
import { defineApp } from '../app/define-app.js';
import { json } from '../codec/codecs.js';
import { ConfigError, KafkaUnavailableError, OncelyError, StoreUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import { MemoryLog } from '../testing/memory-log.js';
import { MemoryStore, type MemoryTx } from '../testing/memory-store.js';
import { until } from '../testing/until.js';
import { StartTimeoutError, StartWait } from './start-wait.js';
import { createWorker } from './worker.js';

function lines(): Logger & { out: string[] } {
  const out: string[] = [];
  const logger: Logger = {
    debug: () => {},
    info: (m) => out.push(`info ${m}`),
    warn: (m) => out.push(`warn ${m}`),
    error: (m) => out.push(`error ${m}`),
    child: () => logger,
  };
  return Object.assign(logger, { out });
}

/** Fails with the given errors in turn, then succeeds. */
function flaky(errors: Error[]): () => Promise<string> {
  let i = 0;
  return async () => {
    const e = errors[i++];
    if (e) throw e;
    return 'ok';
  };
}

describe('start-up wait', () => {
  it('waits out transient failures, with one log line per change of what it waits for', async () => {
    const log = lines();
    const wait = new StartWait({ timeoutMs: 0, signal: new AbortController().signal, logger: log });
    const down = () => new StoreUnavailableError('PostgreSQL is unavailable');
    const op = flaky([down(), down(), down(), new KafkaUnavailableError('no broker'), down()]);
    expect(await wait.step('connect', op)).toBe('ok');
    expect(log.out).toEqual([
      'warn start-up waiting (connect): PostgreSQL is unavailable',
      'warn start-up waiting (connect): no broker',
      'warn start-up waiting (connect): PostgreSQL is unavailable',
      expect.stringMatching(/^info start-up: connect available again after [\d.]+ s; going on$/),
    ]);
  }, 20_000);

  it('fails at once on what no wait can fix, and after the timeout on an outage that lasts', async () => {
    const log = lines();
    const wait = new StartWait({ timeoutMs: 0, signal: new AbortController().signal, logger: log });
    const config = new ConfigError('bad');
    await expect(wait.step('claim', flaky([config]))).rejects.toBe(config);
    await expect(wait.step('claim', flaky([new Error('a bug')]))).rejects.toThrow('a bug');
    expect(log.out).toEqual([]);

    const bounded = new StartWait({ timeoutMs: 50, signal: new AbortController().signal, logger: log });
    const forever = async () => {
      throw new KafkaUnavailableError('no broker');
    };
    const e = await bounded.step('connect to Kafka', forever).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StartTimeoutError);
    expect(OncelyError.is(e, 'KAFKA_UNAVAILABLE')).toBe(true);
    expect((e as Error).message).toMatch(/gave up after .* \(start timeout 50 ms.*"connect to Kafka": no broker/);

    const transientByStore = new StartWait({
      timeoutMs: 0,
      signal: new AbortController().signal,
      logger: log,
      isTransient: (x) => (x as Error).message === 'ECONNREFUSED',
    });
    expect(await transientByStore.step('migrate', flaky([new Error('ECONNREFUSED')]))).toBe('ok');
  });

  it('stop() during a start-up wait ends it: start() resolves, the worker is stopped', async () => {
    const log = new MemoryLog().createTopic('t', 1);
    let connects = 0;
    log.connect = async () => {
      connects++;
      throw new KafkaUnavailableError('no broker');
    };
    const app = defineApp<MemoryTx>({ group: 'g' }).handle({ topic: 't', codec: json() }, () => {});
    const w = createWorker(app, { store: new MemoryStore(), reader: log, logger: lines(), closeOnStop: false });
    const started = w.start();
    await until(() => connects > 0, 'a connect attempt');
    await w.stop();
    await started;
    expect(w.state).toBe('stopped');
    await w.done;
  });
});
