/**
 * The fixed CPU of one batch transaction, without Kafka:
 * `pnpm exec tsx --conditions=source bench/batch-cost.ts [--batches 1000] [--rounds 3]`.
 *
 * One PostgresStore claims one partition and runs `--batches` store.runBatch() calls with an empty
 * handler, one after another, as a partition runner does (BEGIN with the start statement, the
 * commit compare-and-set with COMMIT: two round trips, and knex's transaction). Prints, per round, the
 * process's CPU (user + system) per batch and the wall time per batch, after a warm-up of 200
 * batches. A batch handler's own statements come on top; divide by the records per batch for the
 * share of the CPU per record that a worker pays per transaction (the benchmark's batches hold
 * ~1,300 records: what one fetch of 256 KiB brings). It needs only PostgreSQL (DATABASE_URL, else
 * the project's services) and drops the schema it creates. Nothing is asserted.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { PostgresStore } from '@oncely/postgres-offsets';
import { databaseOnly } from './prologue.js';

const { values } = parseArgs({
  options: { batches: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' } },
});
const batches = Number(values.batches);
const rounds = Number(values.rounds);
const databaseUrl = await databaseOnly();
const schema = `bench_batch_cost_${randomBytes(3).toString('hex')}`;
const store = new PostgresStore({
  connectionString: databaseUrl,
  schema,
  poolMax: 4,
  applicationName: 'oncely-bench-batch-cost',
});

try {
  await store.migrate();
  const claim = await store.claim({
    group: 'batch-cost',
    topic: 't',
    partition: 0,
    workerId: 'w',
    initialOffset: 0n,
    leaseMs: 60_000,
  });
  const run = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const from = claim.nextOffset;
      await store.runBatch(claim, { fetchedFrom: from, nextOffset: from + 1000n, recordCount: 1000 }, async () => {});
      claim.nextOffset = from + 1000n;
    }
  };
  await run(200);
  for (let round = 1; round <= rounds; round++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await run(batches);
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    console.log(
      `round ${round}: ${batches} batches, ${((cpu.user + cpu.system) / batches).toFixed(0)} µs CPU per batch ` +
        `(user ${(cpu.user / batches).toFixed(0)}, system ${(cpu.system / batches).toFixed(0)}), ${(wallMs / batches).toFixed(2)} ms wall per batch`,
    );
  }
} finally {
  await store.knex.raw(`drop schema if exists ${schema} cascade`).catch(() => {});
  await store.close();
}
