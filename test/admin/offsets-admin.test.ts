import { defineApp, json, KafkajsPartitionReader, silentLogger } from '@oncely/core';
import { OffsetsAdmin, type PostgresStore } from '@oncely/postgres-offsets';
import type { Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applicationCounts,
  gap,
  makeProjectionTables,
  type Payment,
  positions,
  producePayments,
  snapshot,
} from '../cli/support.js';
import { brokers, createTopic, deleteRecordsBefore, freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { pgStore, realWorker, until } from '../support/oncely.js';

const reader = new KafkajsPartitionReader({ brokers: brokers(), logger: silentLogger });
afterAll(() => reader.close());

function admin(store: PostgresStore): OffsetsAdmin {
  return new OffsetsAdmin({ store, kafka: reader, actor: 'test' });
}

/** Per-message projection: idempotent record rows + a log of every application. */
function projectionApp(
  topic: string,
  group: string,
  t: { records: string; applications: string },
  opts: { delayMs?: number; gate?: (m: { partition: number; offset: bigint }) => Promise<void> } = {},
) {
  return defineApp<Knex.Transaction>({ group }).handle({ topic, codec: json<Payment>() }, async (m, ctx) => {
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    await opts.gate?.(m);
    await ctx
      .tx(t.records)
      .insert({
        partition: m.partition,
        offset: m.offset.toString(),
        account: m.value.account,
        cents: m.value.cents,
        seq: m.value.seq,
      })
      .onConflict(['partition', 'offset'])
      .ignore();
    await ctx.tx(t.applications).insert({ partition: m.partition, offset: m.offset.toString() });
  });
}

async function records(table: string) {
  return (
    await pgPool().query(`select partition, "offset"::text, account, cents, seq from ${table} order by partition, "offset"`)
  ).rows;
}

describe('OffsetsAdmin against Kafka and PostgreSQL', () => {
  it('live rewind under load: workers keep running, re-apply from the reset position, projection identical', async () => {
    const topic = await createTopic(3);
    const schema = freshSchema();
    const store = await pgStore(schema);
    const live = await makeProjectionTables(schema, '_live');
    const reference = await makeProjectionTables(schema, '_ref');
    const group = randomName('g');
    await producePayments(topic, 3, 150);
    const fenced: string[] = [];
    const options = { batchMaxRecords: 10, leaseMs: 3000 };
    const w1 = await realWorker(projectionApp(topic, group, live, { delayMs: 2 }), schema, { ...options, split: '1/2' });
    const w2 = await realWorker(projectionApp(topic, group, live, { delayMs: 2 }), schema, { ...options, split: '2/2' });
    for (const w of [w1, w2]) {
      w.on('fenced', (f) => {
        fenced.push(f.action);
      });
    }
    await Promise.all([w1.start(), w2.start()]);
    // Load keeps arriving while the rewind happens.
    const producing = (async () => {
      for (let round = 1; round <= 5; round++) await producePayments(topic, 3, 30, 150 + (round - 1) * 30);
    })();
    await until(
      async () => Object.values(await positions(schema, group)).every((o) => BigInt(o) >= 60n),
      'every partition past 60',
    );
    const plan = await admin(store).executeReset({ group, to: { kind: 'offset', offset: 20n } });
    expect(plan.executed).toBe(true);
    expect(plan.entries.every((e) => e.next === 20n && e.current! >= 60n)).toBe(true);
    await producing;
    await until(() => [...w1.progress(), ...w2.progress()].every((p) => p.nextOffset === 300n), 'both workers at 300', 90_000);
    await Promise.all([w1.stop(), w2.stop()]);
    console.log(`live rewind: ${fenced.length} fenced commit(s)/renewal(s): ${fenced.join(', ')}`);
    expect(fenced.filter((a) => a === 'reclaimed').length).toBeGreaterThanOrEqual(3);

    // Exactly once between resets: offsets below 20 once, [20, position at reset) twice, the rest once.
    const counts = await applicationCounts(live.applications);
    for (const e of plan.entries) {
      for (let o = 0n; o < 300n; o++) {
        const expected = o >= 20n && o < e.current! ? 2 : 1;
        expect(counts.get(`${e.partition}:${o}`), `partition ${e.partition} offset ${o}`).toBe(expected);
      }
    }
    // The same projection built by a group that was never rewound.
    const ref = await realWorker(projectionApp(topic, randomName('ref'), reference), schema, { batchMaxRecords: 50 });
    await ref.start();
    await until(() => ref.progress().every((p) => p.nextOffset === 300n), 'reference at 300');
    await ref.stop();
    expect(await records(live.records)).toEqual(await records(reference.records));
    expect(await records(live.records)).toHaveLength(900);
  });

  it('an executed reset fences an in-flight commit: it rolls back and the worker re-claims at the reset position', async () => {
    const topic = await createTopic(1);
    const schema = freshSchema();
    const store = await pgStore(schema);
    const t = await makeProjectionTables(schema);
    const group = randomName('g');
    await producePayments(topic, 1, 12);
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let inside = false;
    let blockedOnce = false;
    const gate = async (m: { offset: bigint }) => {
      if (m.offset === 8n && !blockedOnce) {
        blockedOnce = true;
        inside = true;
        await held;
      }
    };
    const fenced: string[] = [];
    const worker = await realWorker(projectionApp(topic, group, t, { gate }), schema, {
      batchMaxRecords: 1,
    });
    worker.on('fenced', (f) => {
      fenced.push(f.action);
    });
    await worker.start();
    await until(() => inside, 'the batch of offset 8 in its handler');
    // Its transaction has written offset 8's rows but not committed; the reset moves to 3 meanwhile.
    const plan = await admin(store).executeReset({ group, to: { kind: 'offset', offset: 3n } });
    expect(plan.entries[0]!.current).toBe(8n);
    release();
    await until(() => worker.progress()[0]?.nextOffset === 12n && fenced.length > 0, 'caught up after the re-claim');
    await worker.stop();
    expect(fenced).toEqual(['reclaimed']);
    const counts = await applicationCounts(t.applications);
    for (let o = 0; o < 12; o++) expect(counts.get(`0:${o}`), `offset ${o}`).toBe(o >= 3 && o < 8 ? 2 : 1);
    const row = (await store.getPositions(group))[0]!;
    expect(row.highestCommitted).toBe(12n);
  });

  it('point in time: --to-time-of-commit lands every partition on the position committed at that moment', async () => {
    const topic = await createTopic(3);
    const schema = freshSchema();
    const store = await pgStore(schema);
    const t = await makeProjectionTables(schema);
    const group = randomName('g');
    const a = admin(store);
    const moments: Array<{ at: Date; positions: Record<string, string> }> = [];
    // Several runs, each ending at a different place per partition; the moment between runs is recorded.
    for (const [i, perPartition] of [
      [0, 40],
      [1, 25],
      [2, 60],
    ] as const) {
      await producePayments(topic, 3, perPartition, i * 100);
      const w = await realWorker(projectionApp(topic, group, t), schema, { batchMaxRecords: 7, until: 'caught-up' });
      await w.start();
      await w.done;
      await gap();
      moments.push({ at: new Date(), positions: await positions(schema, group) });
      await gap();
    }
    // An operator reset between the first two moments counts as a position too.
    await producePayments(topic, 3, 5, 900);
    for (const m of [moments[1]!, moments[0]!]) {
      const plan = await a.executeReset({ group, to: { kind: 'time-of-commit', at: m.at } });
      expect(plan.entries.map((e) => e.next!.toString())).toEqual(Object.values(m.positions));
      expect(await positions(schema, group)).toEqual(m.positions);
    }
    await gap();
    const afterReset = new Date();
    await gap();
    const w = await realWorker(projectionApp(topic, group, t), schema, { batchMaxRecords: 7, until: 'caught-up' });
    await w.start();
    await w.done;
    // Looking back to just after the last reset finds the reset's positions, not the later commits.
    const pit = await a.positionsAt(group, afterReset);
    expect(Object.fromEntries(pit.map((p) => [`${p.topic}:${p.partition}`, p.nextOffset.toString()]))).toEqual(
      moments[0]!.positions,
    );
    expect(pit.every((p) => p.source === 'reset')).toBe(true);
    const audit = await a.auditLog({ group });
    expect(audit.map((x) => x.action)).toEqual(['offsets.reset', 'offsets.reset']);
    expect(audit[0]!.actor).toBe('test');
  });

  it('plans change nothing, clamp to the log, and checkpoints round-trip', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema();
    const store = await pgStore(schema);
    const t = await makeProjectionTables(schema);
    const group = randomName('g');
    await producePayments(topic, 2, 50);
    const w = await realWorker(projectionApp(topic, group, t), schema, { until: 'caught-up' });
    await w.start();
    await w.done;
    await deleteRecordsBefore(topic, 1, 10n);
    const a = admin(store);
    const cp = await a.createCheckpoint('before-deploy', group);
    expect(cp).toMatchObject({ name: 'before-deploy', group, partitions: 2, topics: [topic] });
    await expect(a.createCheckpoint('before-deploy', group)).rejects.toThrow(/already exists/);

    const before = await snapshot(schema);
    const targets = [
      { kind: 'offset', offset: 1_000_000n },
      { kind: 'earliest' },
      { kind: 'latest' },
      { kind: 'datetime', at: new Date(0) },
      { kind: 'duration', ms: 3_600_000 },
      { kind: 'shift', by: -45n },
      { kind: 'checkpoint', name: 'before-deploy' },
      { kind: 'time-of-commit', at: new Date() },
    ] as const;
    const plans = [];
    for (const to of targets) plans.push(await a.planReset({ group, to }));
    expect(await snapshot(schema)).toEqual(before);

    const [toBig, earliest, , byDate, , shift] = plans;
    expect(toBig!.entries.map((e) => [e.next, e.clamped])).toEqual([
      [50n, 'high-watermark'],
      [50n, 'high-watermark'],
    ]);
    expect(earliest!.entries.map((e) => e.next)).toEqual([0n, 10n]);
    expect(byDate!.entries.map((e) => e.next)).toEqual([0n, 10n]);
    expect(shift!.entries.map((e) => [e.next, e.clamped ?? null, e.reprocess])).toEqual([
      [5n, null, 45n],
      [10n, 'log-start', 40n],
    ]);
    expect(shift!.reprocess).toBe(85n);

    // To the checkpoint after moving away; then list and delete.
    await a.executeReset({ group, to: { kind: 'shift', by: -20n }, topics: [{ topic, partitions: [0] }] });
    expect(await positions(schema, group)).toEqual({ [`${topic}:0`]: '30', [`${topic}:1`]: '50' });
    const back = await a.executeReset({ group, to: { kind: 'checkpoint', name: 'before-deploy' } });
    expect(back.entries.map((e) => e.changes)).toEqual([true, false]);
    expect(await positions(schema, group)).toEqual({ [`${topic}:0`]: '50', [`${topic}:1`]: '50' });
    expect((await a.listCheckpoints(group)).map((c) => c.name)).toEqual(['before-deploy']);
    expect(await a.deleteCheckpoint('before-deploy', group)).toBe(2);
    await expect(a.deleteCheckpoint('before-deploy', group)).rejects.toThrow(/No checkpoint before-deploy/);
    expect(await a.listCheckpoints(group)).toEqual([]);
  });

  it('replayIntoGroup starts a new group at the source positions; refuses an existing or the same group', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema();
    const store = await pgStore(schema);
    const t = await makeProjectionTables(schema);
    const group = randomName('a');
    await producePayments(topic, 2, 30);
    const w = await realWorker(projectionApp(topic, group, t), schema, { until: 'caught-up' });
    await w.start();
    await w.done;
    const a = admin(store);
    const b = randomName('b');
    const dry = await a.replayIntoGroup({ fromGroup: group, group: b });
    expect(dry.executed).toBe(false);
    expect(await store.getPositions(b)).toEqual([]);
    const plan = await a.replayIntoGroup({ fromGroup: group, group: b }, { execute: true });
    expect(plan.entries.map((e) => [e.current, e.next])).toEqual([
      [null, 30n],
      [null, 30n],
    ]);
    expect(Object.values(await positions(schema, b))).toEqual(['30', '30']);
    await expect(a.replayIntoGroup({ fromGroup: group, group: b }, { execute: true })).rejects.toThrow(/already has 2 stored/);
    await expect(a.replayIntoGroup({ fromGroup: group, group })).rejects.toThrow(/two different groups/);
  });
});
