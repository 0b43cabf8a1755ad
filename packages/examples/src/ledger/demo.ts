/**
 * The ledger demo: a producer streams payments while a worker applies them; the worker is killed
 * with SIGKILL mid-stream several times and restarted; at the end the audit compares every
 * record and every balance with what was produced.
 *
 *   bash scripts/demo.sh [--payments N] [--kills K]
 */
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import knexFactory from 'knex';
import { createLedgerTables } from './app.js';
import { auditLedger, highWatermarks, producePayments, spawnLedgerWorker, waitCaughtUp } from './harness.js';

const { values } = parseArgs({
  options: {
    payments: { type: 'string', default: '20000' },
    kills: { type: 'string', default: '4' },
    partitions: { type: 'string', default: '4' },
  },
});
const payments = Number(values.payments);
const kills = Number(values.kills);
const partitions = Number(values.partitions);
const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
const databaseUrl = process.env.DATABASE_URL;
if (brokers.length === 0 || !databaseUrl) {
  console.error('demo: KAFKA_BROKERS and DATABASE_URL must be set; run it with `bash scripts/demo.sh`, which starts both.');
  process.exit(2);
}

const stamp = Date.now().toString(36);
const topic = `ledger-demo-${stamp}`;
const group = 'ledger-demo';
const oncelySchema = 'oncely_demo';
const ledgerSchemaName = 'ledger_demo';
const t0 = Date.now();
const log = (s: string) => console.log(`[demo +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

const knex = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 2 } });
await knex.raw(`drop schema if exists ${oncelySchema} cascade`);
await knex.raw(`drop schema if exists ${ledgerSchemaName} cascade`);
await createLedgerTables(knex, ledgerSchemaName);

const kafka = new Kafka({ clientId: 'ledger-demo', brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }] });
await admin.disconnect();
log(`topic ${topic} (${partitions} partitions), group ${group}, ${payments} payments, ${kills} SIGKILLs`);

const env = {
  KAFKA_BROKERS: brokers.join(','),
  DATABASE_URL: databaseUrl,
  ONCELY_SCHEMA: oncelySchema,
  LEDGER_TOPIC: topic,
  LEDGER_GROUP: group,
  LEDGER_SCHEMA: ledgerSchemaName,
  LEDGER_TRACE: '1' as const,
  LEDGER_BATCH: '100',
};

// Spread the stream over the kills so that every restart meets records in flight.
const production = producePayments({ brokers, topic, count: payments, chunk: 250, pauseMs: 60 });
const phases: Record<string, number> = {};
for (let k = 1; k <= kills; k++) {
  const w = spawnLedgerWorker(env);
  await w.waitFor(/^phase running/);
  // Let it commit a few batches, then kill it wherever it is: in a transaction, between, fetching.
  const commitsBeforeKill = 3 + Math.floor(Math.random() * 20);
  for (let c = 0; c < commitsBeforeKill; c++) await w.waitFor(/^phase committed/);
  await new Promise((r) => setTimeout(r, Math.random() * 40));
  const phase = (w.lastPhase() ?? 'phase ?').split(' ')[1] ?? '?';
  w.child.kill('SIGKILL');
  await w.exited;
  phases[phase] = (phases[phase] ?? 0) + 1;
  log(
    `kill ${k}/${kills}: SIGKILL while ${phase === 'in-tx' ? 'inside a transaction' : 'just after a commit'} (${w.lastPhase()})`,
  );
}
log('restarting the worker for the last time; waiting for the stream to end and the worker to catch up');
const final = spawnLedgerWorker(env);
const produced = await production;
const targets = await highWatermarks(brokers, topic);
let lastPrint = 0;
await waitCaughtUp(knex, oncelySchema, group, topic, targets, {
  onProgress: (done, total) => {
    if (Date.now() - lastPrint > 2000) {
      lastPrint = Date.now();
      log(`applied ${done}/${total}`);
    }
  },
});
final.child.kill('SIGTERM');
const exit = await final.exited;
log(`worker drained and exited with code ${exit.code}`);

const audit = await auditLedger(knex, ledgerSchemaName, produced);
await knex.destroy();
const rows: Array<[string, string | number]> = [
  ['records produced', audit.produced],
  ['records applied', audit.appliedRows],
  ['duplicates', audit.duplicates],
  ['missing', audit.missing],
  ['out-of-order applications', audit.orderViolations],
  ['accounts checked', audit.balancesChecked],
  ['balances matching', audit.balancesChecked - audit.balanceMismatches.length],
  ['SIGKILLs', kills],
];
console.log('\n  ledger audit');
for (const [k, v] of rows) console.log(`  ${k.padEnd(28)} ${v}`);
console.log(
  `\n  ${audit.ok ? 'OK: every payment applied exactly once, every balance matches' : 'FAILED: see the numbers above'}\n`,
);
process.exitCode = audit.ok ? 0 : 1;
