/**
 * Where should the commit CAS sit in a batch transaction? Measures both placements against a real
 * PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres):
 *
 *   cas-last  (shipped)  BEGIN; set_config + lock-free epoch check; handler; CAS+log+DLQ; COMMIT   (4 statements + handler)
 *   cas-first            BEGIN; set_config + CAS+log+DLQ; handler; COMMIT                          (3 statements + handler)
 *
 * 1. throughput: P partitions in parallel, each committing batches whose handler runs 1 or 50 inserts;
 * 2. a claim of a partition whose batch handler takes HANDLER_MS: how long the claim waits.
 *
 * Run: npx tsx packages/postgres-offsets/bench/cas-position.ts   (after pnpm build)
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Claim } from '@oncely/core';
import type { Knex } from 'knex';
import { PostgresStore } from '../src/index.js';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PARTITIONS = Number(process.env.PARTITIONS ?? 8);
const BATCHES = Number(process.env.BATCHES ?? 1000);
const HANDLER_MS = 200;
const schema = `bench_${randomBytes(4).toString('hex')}`;
const store = new PostgresStore({ connectionString: url, schema, poolMax: PARTITIONS + 2 });

// The CAS-first variant: the same commit statement with the lock_timeout set_config folded in.
const casFirstSql = `
with settings as (select set_config('lock_timeout', ?, true) as lock_timeout),
cas as (
  update "${schema}".partitions p
     set next_offset = ?::bigint, max_committed_offset = greatest(p.max_committed_offset, ?::bigint),
         lease_expires_at = clock_timestamp() + coalesce(p.lease_ms, 0) * interval '1 millisecond', updated_at = clock_timestamp()
   where p.group_id = ? and p.topic = ? and p.partition = ?::int and p.epoch = ?::bigint and p.next_offset = ?::bigint
     and p.owner = ? and exists (select 1 from settings)
  returning p.group_id, p.topic, p.partition, p.epoch, p.owner
),
log as (
  insert into "${schema}".offset_log (group_id, topic, partition, from_offset, to_offset, record_count, epoch, worker_id)
  select group_id, topic, partition, ?::bigint, ?::bigint, ?::int, epoch, owner from cas
)
select count(*)::int as updated from cas`;

async function casFirst<R>(claim: Claim, from: bigint, to: bigint, work: (tx: Knex.Transaction) => Promise<R>): Promise<R> {
  return store.knex.transaction(async (trx) => {
    const n = String(to);
    const { rows } = await trx.raw(casFirstSql, [
      '5000',
      n,
      n,
      claim.group,
      claim.topic,
      claim.partition,
      claim.epoch.toString(),
      String(from),
      claim.workerId,
      String(from),
      n,
      Number(to - from),
    ]);
    if (rows[0].updated !== 1) throw new Error('fenced');
    return work(trx);
  });
}

type Variant = 'cas-last' | 'cas-first';

function run<R>(v: Variant, claim: Claim, from: bigint, to: bigint, work: (tx: Knex.Transaction) => Promise<R>) {
  return v === 'cas-last'
    ? store.runBatch(claim, { fetchedFrom: from, nextOffset: to, recordCount: Number(to - from) }, work)
    : casFirst(claim, from, to, work);
}

async function throughput(
  v: Variant,
  statements: number,
  batches: number,
): Promise<{ perSecond: number; p50: number; p99: number }> {
  const group = `tp_${v}_${randomBytes(3).toString('hex')}`;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: PARTITIONS }, async (_, partition) => {
      const claim = await store.claim({ group, topic: 't', partition, workerId: 'w', initialOffset: 0n, leaseMs: 60_000 });
      for (let i = 0n; i < BigInt(batches); i++) {
        const t = performance.now();
        await run(v, claim, i, i + 1n, async (tx) => {
          // A message handler: one statement per record.
          for (let r = 0; r < statements; r++) {
            await tx.raw(`insert into "${schema}".bench_rows (p, n) values (?, ?)`, [partition, i.toString()]);
          }
        });
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.floor(latencies.length * p)]!;
  return { perSecond: Math.round((PARTITIONS * batches) / seconds), p50: pct(0.5), p99: pct(0.99) };
}

async function claimWait(v: Variant): Promise<number> {
  const input = { group: `cw_${v}`, topic: 't', partition: 0, workerId: 'w', initialOffset: 0n, leaseMs: 60_000 };
  const claim = await store.claim(input);
  let pending: Promise<number> | undefined;
  await run(v, claim, 0n, 1n, async () => {
    const started = performance.now();
    // Another worker claims the partition while this handler runs. cas-first: the claim waits for
    // this batch's COMMIT; cas-last: it returns at once and this batch is fenced at its CAS.
    pending = store.claim({ ...input, workerId: 'other', force: true }).then(() => performance.now() - started);
    await new Promise((r) => setTimeout(r, HANDLER_MS));
  }).catch(() => {});
  return pending!;
}

try {
  await store.migrate();
  await store.knex.raw(`create table "${schema}".bench_rows (id bigserial primary key, p int, n bigint)`);
  for (const statements of [1, 50]) {
    for (const v of ['cas-first', 'cas-last', 'cas-first', 'cas-last', 'cas-first', 'cas-last'] as const) {
      const r = await throughput(v, statements, Math.ceil(BATCHES / statements));
      console.log(
        `${v.padEnd(9)} ${PARTITIONS} partitions, ${statements}-statement handler: ${r.perSecond} batches/s  ` +
          `p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms`,
      );
    }
  }
  for (const v of ['cas-first', 'cas-last'] as const) {
    console.log(`${v.padEnd(9)} claim during a ${HANDLER_MS} ms handler waited ${(await claimWait(v)).toFixed(1)} ms`);
  }
} finally {
  await store.knex.raw(`drop schema "${schema}" cascade`);
  await store.close();
}
