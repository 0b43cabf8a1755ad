import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import { MemoryLog } from '../testing/memory-log.js';
import { MemoryStore } from '../testing/memory-store.js';
import { compileWorkerOptions, type WorkerOptions } from './options.js';

function recordingLogger(lines: string[]): Logger {
  const make = (): Logger => ({
    debug: (m) => lines.push(`debug ${m}`),
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
    child: () => make(),
  });
  return make();
}

const compile = (o: Partial<WorkerOptions<unknown>>, lines: string[] = []) =>
  compileWorkerOptions({
    store: new MemoryStore() as never,
    reader: new MemoryLog(),
    logger: recordingLogger(lines),
    ...o,
  });

const configError = (o: Partial<WorkerOptions<unknown>>): ConfigError => {
  try {
    compile(o);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`no ConfigError for ${JSON.stringify(o)}`);
};

describe('membership timeouts', () => {
  it('defaults fit Kubernetes: a 20 s drain inside the 30 s grace period, heartbeats a fifth of the lease and session', () => {
    const lines: string[] = [];
    const o = compile({}, lines);
    expect([o.leaseMs, o.sessionTimeoutMs, o.heartbeatIntervalMs, o.drainTimeoutMs]).toEqual([15_000, 15_000, 3_000, 20_000]);
    expect(lines.filter((l) => l.startsWith('warn'))).toEqual([]);
  });

  it('an unset heartbeat interval follows a short lease or session timeout down to a third', () => {
    expect(compile({ leaseMs: 3_000 }).heartbeatIntervalMs).toBe(1_000);
    expect(compile({ sessionTimeoutMs: 1_500, leaseMs: 60_000 }).heartbeatIntervalMs).toBe(500);
    expect(compile({ leaseMs: 60_000, sessionTimeoutMs: 60_000 }).heartbeatIntervalMs).toBe(3_000);
  });

  it('refuses a heartbeat interval above a third of the lease or of the session timeout, naming both options', () => {
    expect(configError({ heartbeatIntervalMs: 5_001 }).message).toMatch(
      /heartbeatIntervalMs \(5001\) must be at most a third of leaseMs \(15000\).*lower heartbeatIntervalMs or raise leaseMs/,
    );
    expect(configError({ leaseMs: 60_000, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 2_500 }).message).toMatch(
      /heartbeatIntervalMs \(2500\) must be at most a third of sessionTimeoutMs \(6000\).*raise sessionTimeoutMs/,
    );
    // At exactly a third both hold.
    expect(compile({ leaseMs: 6_000, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 2_000 }).heartbeatIntervalMs).toBe(2_000);
  });

  it('refuses timeouts out of range, naming the option', () => {
    expect(configError({ leaseMs: 999 }).message).toMatch(/leaseMs must be an integer from 1000/);
    expect(configError({ sessionTimeoutMs: 500 }).message).toMatch(/sessionTimeoutMs must be an integer from 1000/);
    expect(configError({ heartbeatIntervalMs: 50 }).message).toMatch(/heartbeatIntervalMs must be an integer from 100/);
    expect(configError({ drainTimeoutMs: -1 }).message).toMatch(/drainTimeoutMs must be an integer from 0/);
  });

  it('warns when the drain leaves no time of the default 30 s grace period to release the claims, with the grace period to set', () => {
    const lines: string[] = [];
    const warnings = () => lines.filter((l) => l.startsWith('warn'));
    expect(compile({ drainTimeoutMs: 25_000 }, lines).drainTimeoutMs).toBe(25_000);
    expect(warnings()).toEqual([]);
    expect(compile({ drainTimeoutMs: 40_000 }, lines).drainTimeoutMs).toBe(40_000);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatch(
      /^warn Worker option drainTimeoutMs \(40000\) leaves less than 5 s of Kubernetes' default termination grace period \(30 s\).*terminationGracePeriodSeconds of at least 45/,
    );
  });
});

describe('membership choice', () => {
  // The same store without heartbeats (TransactionalStore.heartbeat is optional).
  const storeWithoutHeartbeats = () =>
    new Proxy(new MemoryStore(), {
      get: (target, key) => {
        if (key === 'heartbeat') return undefined;
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as never;
  const membershipLine = (lines: string[]) => lines.filter((l) => l.startsWith('info membership '));

  it('is elastic by default with a store that keeps heartbeats, and says so once, with why', () => {
    expect(typeof new MemoryStore().heartbeat).toBe('function');
    const lines: string[] = [];
    const o = compile({}, lines);
    expect(o.membership).toBe('elastic');
    expect(membershipLine(lines)).toEqual([`info membership elastic: ${o.membershipReason}`]);
    expect(o.membershipReason).toMatch(/^the default: no static assignment was given and the store keeps heartbeats/);
    expect(o.membershipReason).toMatch(/--membership static/);
    // maxPartitions is an elastic option: with it the default stays elastic.
    expect(compile({ maxPartitions: 2 }).membership).toBe('elastic');
  });

  it('is static when the worker names an assignment, runs bounded or has a store without heartbeats, naming the reason', () => {
    const cases: Array<[Partial<WorkerOptions<unknown>>, RegExp]> = [
      [{ partitions: 'payments:0-3' }, /^partitions \(--partitions\) names a static assignment$/],
      [{ split: '1/2' }, /^split \(--worker i\/n\) names a static assignment$/],
      [{ onHeld: 'fail' }, /^onHeld \(--on-held\) belongs to static membership$/],
      [{ force: true }, /^force \(--force\) belongs to static membership$/],
      [{ until: 'caught-up' }, /^until: 'caught-up' \(--until caught-up\) is a bounded run/],
      [{ store: storeWithoutHeartbeats() }, /^the store keeps no heartbeats/],
    ];
    for (const [options, reason] of cases) {
      const lines: string[] = [];
      const o = compile(options, lines);
      expect([JSON.stringify(Object.keys(options)), o.membership]).toEqual([JSON.stringify(Object.keys(options)), 'static']);
      expect(o.membershipReason).toMatch(reason);
      expect(membershipLine(lines)).toEqual([`info membership static: ${o.membershipReason}`]);
    }
  });

  it("keeps an explicit membership: 'static' static, and an explicit 'elastic' elastic, saying it was asked for", () => {
    const lines: string[] = [];
    const o = compile({ membership: 'static' }, lines);
    expect([o.membership, o.membershipReason]).toEqual(['static', "asked for (membership: 'static', --membership static)"]);
    expect(membershipLine(lines)).toEqual(["info membership static: asked for (membership: 'static', --membership static)"]);
    expect(compile({ membership: 'elastic' }).membership).toBe('elastic');
  });

  it('refuses what contradicts an explicit elastic membership, and maxPartitions on a static one', () => {
    expect(configError({ membership: 'elastic', split: '1/2' }).message).toMatch(/split belongs to static membership/);
    expect(configError({ membership: 'elastic', until: 'caught-up' }).message).toMatch(/needs membership: 'static'/);
    expect(configError({ membership: 'elastic', store: storeWithoutHeartbeats() }).message).toMatch(
      /needs a store that keeps heartbeats/,
    );
    expect(configError({ partitions: 'payments:*', maxPartitions: 2 }).message).toMatch(
      /maxPartitions belongs to membership: 'elastic'/,
    );
    expect(configError({ partitions: 'payments:*', weight: 2 }).message).toMatch(/weight belongs to membership: 'elastic'/);
    expect(configError({ weight: 0 }).message).toMatch(/weight must be an integer from 1 to 1000; got 0/);
    expect(compile({ weight: 3 })).toMatchObject({ membership: 'elastic', weight: 3 });
    expect(configError({ membership: 'sticky' as never }).message).toMatch(/membership must be 'static' or 'elastic'/);
  });
});
