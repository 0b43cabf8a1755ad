/**
 * A release that finds its claim gone: the partition was taken over (or rewound) after the worker's
 * last renewal and before it gave the partition up, at its stop or at a hand-off. The store's
 * release matches nothing then, and the worker must not report a release of a partition it no
 * longer held: it reports the fence its release found (`fenced`, `dropped`, detectedBy `release`),
 * which workerMetrics counts with the other fences, and the new holder keeps its claim.
 */
import { type Claim, defineApp, json, type TransactionalStore, workerMetrics } from '@oncely/core';
import type { Knex } from 'knex';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { captureLogger } from '../failure/support.js';
import { createTopic, freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';

const app = (group: string, topic: string) =>
  defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json<unknown>() }, async () => {});

/** `name{labels} value` lines of the registry, summed (optionally only those with a label). */
async function sample(registry: Registry, name: string, label?: string): Promise<number> {
  let sum = 0;
  for (const line of (await registry.metrics()).split('\n')) {
    const m = /^([a-z_:][a-z0-9_:]*)(\{[^}]*\})? (\S+)$/i.exec(line);
    if (!m || m[1] !== name || (label && !(m[2] ?? '').includes(label))) continue;
    sum += Number(m[3]);
  }
  return sum;
}

async function owner(schema: string, group: string, partition: number): Promise<string | null> {
  const { rows } = await pgPool().query(`select owner from ${schema}.partitions where group_id = $1 and partition = $2`, [
    group,
    partition,
  ]);
  return rows[0]?.owner ?? null;
}

/** What a worker reported: its releases and its fences, as `<partition> <what>`. */
function watch(w: Worker) {
  const released: string[] = [];
  const fenced: string[] = [];
  w.on('release', (r) => void released.push(`${r.partition} ${r.reason}`));
  w.on('fenced', (f) => void fenced.push(`${f.partition} ${f.action} by ${f.detectedBy}`));
  return { released, fenced };
}
type Worker = Awaited<ReturnType<typeof realWorker>>;

describe('a release whose claim was taken over', () => {
  it('at the stop: reported as a fence found by the release, not as a release, and counted as one', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema('stale_release');
    const group = randomName('stale-release');
    const store = await pgStore(schema);
    const log = captureLogger();
    // No renewal before the stop: the takeover is found by the release alone.
    const w = await realWorker(app(group, topic), schema, {
      store,
      logger: log,
      workerId: 'A',
      leaseMs: 60_000,
      sessionTimeoutMs: 60_000,
      heartbeatIntervalMs: 20_000,
    });
    const registry = new Registry();
    const metrics = workerMetrics(w, { registry });
    const seen = watch(w);
    await w.start();
    await until(() => w.progress().length === 1, 'the worker holds the partition');
    const epoch = w.progress()[0]!.epoch;

    const other = await pgStore(schema);
    const taken = await other.claim({
      group,
      topic,
      partition: 0,
      workerId: 'B',
      initialOffset: 0n,
      leaseMs: 60_000,
      force: true,
    });
    expect(taken.epoch).toBeGreaterThan(epoch);
    await w.stop();

    expect(seen.released).toEqual([]); // before: ['0 stop'], for a partition B held
    expect(seen.fenced).toEqual(['0 dropped by release']);
    expect(await owner(schema, group, 0)).toBe('B');
    expect(log.lines.filter((l) => l.startsWith('warn release refused: the claim is no longer current'))).toHaveLength(1);
    expect(await sample(registry, 'oncely_releases_total')).toBe(0);
    expect(await sample(registry, 'oncely_fenced_commits_total', 'detected_by="release"')).toBe(1);
    metrics.stop();
  });

  it('at a hand-off: the fence is reported for the handed-off partition, and a later release that matched is a release', {
    timeout: 120_000,
  }, async () => {
    const topic = await createTopic(2);
    const schema = freshSchema('stale_handoff');
    const group = randomName('stale-handoff');
    const base = await pgStore(schema);
    const thief = await pgStore(schema);
    // The first release of A is preceded by a takeover (after A's last renewal, before its release).
    let takeOverFirst = true;
    const storeA = new Proxy(base, {
      get(target, key) {
        const v = Reflect.get(target, key, target);
        if (key === 'release') {
          return async (claim: Claim) => {
            if (takeOverFirst) {
              takeOverFirst = false;
              await thief.claim({ ...claim, workerId: 'X', initialOffset: 0n, leaseMs: 60_000, force: true });
            }
            return target.release(claim);
          };
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as TransactionalStore<Knex.Transaction>;
    const timing = { leaseMs: 3000, sessionTimeoutMs: 3000, heartbeatIntervalMs: 300 };
    const a = await realWorker(app(group, topic), schema, { store: storeA, workerId: 'A', membership: 'elastic', ...timing });
    const seen = watch(a);
    await a.start();
    await until(() => a.progress().length === 2, 'A holds both partitions');
    // B joins: A hands one partition off to it.
    const b = await realWorker(app(group, topic), schema, {
      store: await pgStore(schema),
      workerId: 'B',
      membership: 'elastic',
      ...timing,
    });
    await b.start();
    await until(() => seen.fenced.length + seen.released.length > 0, 'A reporting its hand-off');
    expect(seen.released).toEqual([]); // before: the hand-off was reported as a release
    const handedOff = Number(seen.fenced[0]!.split(' ')[0]);
    expect(seen.fenced).toEqual([`${handedOff} dropped by release`]);
    expect(await owner(schema, group, handedOff)).toBe('X');
    await b.stop();
    await a.stop();
    // A's own partition is released at its stop, as always.
    expect(seen.released).toEqual([`${1 - handedOff} stop`]);
    expect(seen.fenced).toHaveLength(1);
  });
});
