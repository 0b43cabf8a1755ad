/**
 * The ledger demo: a producer streams payments while a worker applies them; the worker is killed
 * with SIGKILL mid-stream several times and restarted; at the end the audit compares every
 * record and every balance with what was produced.
 *
 *   bash scripts/demo.sh [--payments N] [--kills K] [--partitions P] [--keep]
 *
 * Everything it writes goes to a topic and two schemas named for this run and created by it (it
 * never touches existing ones); after an OK audit it removes them, unless --keep asks to look at
 * them. After a failed audit they are kept and named.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
    keep: { type: 'boolean', default: false },
  },
});
const payments = Number(values.payments);
const kills = Number(values.kills);
const partitions = Number(values.partitions);
for (const [name, n, min] of [
  ['--payments', payments, 1],
  ['--kills', kills, 0],
  ['--partitions', partitions, 1],
] as const) {
  if (!Number.isInteger(n) || n < min) {
    console.error(`demo: ${name} must be an integer >= ${min}`);
    process.exit(2);
  }
}
const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
const databaseUrl = process.env.DATABASE_URL;
if (brokers.length === 0 || !databaseUrl) {
  console.error('demo: KAFKA_BROKERS and DATABASE_URL must be set; run it with `bash scripts/demo.sh`, which starts both.');
  process.exit(2);
}

// Names of this run only: lower-case letters and digits, valid as unquoted identifiers.
const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const topic = `ledger-demo-${run}`;
const group = 'ledger-demo';
const oncelySchema = `oncely_demo_${run}`;
const ledgerSchemaName = `ledger_demo_${run}`;
const t0 = Date.now();
const log = (s: string) => console.log(`[demo +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

const knex = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 2 } });
// `create schema` without `if not exists`: fails rather than write into a schema it did not make.
await knex.raw(`create schema ${oncelySchema}`);
await knex.raw(`create schema ${ledgerSchemaName}`);
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
  // One identity across restarts: each restarted worker takes its partitions back at once.
  LEDGER_WORKER_ID: `${group}-worker`,
};

// The stream is paced (sends of up to 250, ~8 per kill at least, each followed by a pause) and the
// kills are spread over it, so that every restart meets records in flight.
const chunk = Math.max(10, Math.min(250, Math.floor(payments / (8 * Math.max(kills, 1)))));
let sent = 0;
let productionEnded = false;
const production = producePayments({
  brokers,
  topic,
  count: payments,
  chunk,
  pauseMs: 60,
  onProgress: (n) => {
    sent = n;
  },
});
const ended = production.then(
  () => {
    productionEnded = true;
  },
  () => {
    productionEnded = true;
  },
);
let current: ChildProcess | undefined;
try {
  const phases: Record<string, number> = {};
  for (let k = 1; k <= kills; k++) {
    const w = spawnLedgerWorker(env);
    current = w.child;
    await w.waitFor(/^phase running/);
    // Kill k comes once k/(kills+1) of the stream is sent and the worker has committed since its
    // start, a random moment later: in a transaction, between two, or fetching.
    while (sent < (k * payments) / (kills + 1) && !productionEnded) await new Promise((r) => setTimeout(r, 20));
    const committed = w.waitFor(/^phase committed/);
    committed.catch(() => {}); // the kill below rejects it when still pending
    await Promise.race([committed, ended]);
    await new Promise((r) => setTimeout(r, Math.random() * 40));
    const phase = (w.lastPhase() ?? 'phase ?').split(' ')[1] ?? '?';
    w.child.kill('SIGKILL');
    await w.exited;
    phases[phase] = (phases[phase] ?? 0) + 1;
    log(
      `kill ${k}/${kills}: SIGKILL while ${phase === 'in-tx' ? 'inside a transaction' : phase === 'committed' ? 'just after a commit' : 'starting or fetching'} (${w.lastPhase() ?? 'no phase yet'})`,
    );
  }
  log('restarting the worker for the last time; waiting for the stream to end and the worker to catch up');
  const final = spawnLedgerWorker(env);
  current = final.child;
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
  current = undefined;
  log(`worker drained and exited with code ${exit.code}`);
  await report(produced);
} catch (e) {
  current?.kill('SIGKILL');
  await knex.destroy();
  console.error(`demo: ${e instanceof Error ? e.message : String(e)}`);
  console.error(`demo: kept topic ${topic} and schemas ${oncelySchema}, ${ledgerSchemaName} for a look`);
  process.exit(1);
}

async function report(produced: Awaited<typeof production>): Promise<void> {
  const audit = await auditLedger(knex, ledgerSchemaName, produced);
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
  if (audit.ok && !values.keep) {
    // Only what this run created: its two schemas and its topic.
    await knex.raw(`drop schema ${ledgerSchemaName} cascade`);
    await knex.raw(`drop schema ${oncelySchema} cascade`);
    const cleanupAdmin = kafka.admin();
    await cleanupAdmin.connect();
    await cleanupAdmin.deleteTopics({ topics: [topic] }).catch(() => {}); // a broker may forbid deletion
    await cleanupAdmin.disconnect();
  } else {
    log(`kept topic ${topic} and schemas ${oncelySchema} (oncely's tables), ${ledgerSchemaName} (the ledger)`);
  }
  await knex.destroy();
  console.log('\n  ledger audit');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(28)} ${v}`);
  console.log(
    `\n  ${audit.ok ? 'OK: every payment applied exactly once, every balance matches' : 'FAILED: see the numbers above'}\n`,
  );
  process.exitCode = audit.ok ? 0 : 1;
}
