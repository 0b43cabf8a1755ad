/**
 * A ledger worker process, as the demo and the crash test run it (they SIGKILL it at random).
 * Configuration from the environment: KAFKA_BROKERS, DATABASE_URL, ONCELY_SCHEMA, LEDGER_TOPIC,
 * LEDGER_GROUP, LEDGER_SCHEMA. With LEDGER_TRACE=1 it prints one line per phase on stdout
 * (`phase in-tx <p>:<offset>`, `phase committed <p>:<next>`) so a test can aim its kills, and
 * LEDGER_HANDLER_DELAY_MS widens the time spent inside the transaction. LEDGER_CRASH_BUDGET sets
 * the worker's crashBudget. Membership: LEDGER_WORKER_ID (a stable identity: a restart takes its
 * own partitions back at once), LEDGER_MEMBERSHIP (static | elastic; unset: the default, elastic), LEDGER_LEASE_MS,
 * LEDGER_HEARTBEAT_MS, LEDGER_SESSION_TIMEOUT_MS, LEDGER_PARTITION_REFRESH_MS; with LEDGER_TRACE=1 it also prints
 * `event claim|release <p> <epoch>` and `event fenced <p> <epoch> <action> <detectedBy>` lines;
 * LEDGER_STALL_MS makes SIGUSR2 stall the next record's transaction (see below); LEDGER_IDLE_TX_MS sets the
 * store's idleInTransactionTimeoutMs. LEDGER_READER picks the Kafka reader: kafkajs (the default) or
 * platformatic (@platformatic/kafka).
 */
import { consoleLogger, createWorker, handleSignals, KafkajsPartitionReader, PlatformaticPartitionReader } from '@oncely/core';
import { PostgresStore } from '@oncely/postgres-offsets';
import { createLedgerApp } from './app.js';

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) {
    console.error(`ledger worker: ${name} is not set`);
    process.exit(2);
  }
  return v;
};

const trace = process.env.LEDGER_TRACE === '1';
const delayMs = Number(process.env.LEDGER_HANDLER_DELAY_MS ?? 0);
const say = (line: string) => trace && process.stdout.write(`${line}\n`);
// SIGUSR2 (with LEDGER_STALL_MS): the next record applied prints `phase stalled <p>:<offset>` and
// its handler then waits LEDGER_STALL_MS inside the open transaction, so that a test can SIGSTOP
// the process in a transaction (a zombie) and see what becomes of its late commit.
const stallMs = Number(process.env.LEDGER_STALL_MS ?? 0);
let stallNext = false;
if (stallMs > 0) process.on('SIGUSR2', () => (stallNext = true));

const logger = consoleLogger({ level: (process.env.ONCELY_LOG_LEVEL as 'info' | undefined) ?? 'warn' });
const app = createLedgerApp({
  topic: env('LEDGER_TOPIC', 'payments'),
  group: env('LEDGER_GROUP', 'ledger'),
  schema: env('LEDGER_SCHEMA', 'ledger'),
  onApply: async (msg) => {
    say(`phase in-tx ${msg.partition}:${msg.offset}`);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    if (stallNext) {
      stallNext = false;
      say(`phase stalled ${msg.partition}:${msg.offset}`);
      await new Promise((r) => setTimeout(r, stallMs));
    }
  },
});
const store = new PostgresStore({
  connectionString: env('DATABASE_URL'),
  schema: env('ONCELY_SCHEMA', 'oncely'),
  poolMax: 8,
  ...(process.env.LEDGER_IDLE_TX_MS ? { idleInTransactionTimeoutMs: Number(process.env.LEDGER_IDLE_TX_MS) } : {}),
});
await store.migrate();
const readerKind = env('LEDGER_READER', 'kafkajs');
if (readerKind !== 'kafkajs' && readerKind !== 'platformatic') {
  console.error(`ledger worker: LEDGER_READER must be kafkajs or platformatic; got ${readerKind}`);
  process.exit(2);
}
const Reader = readerKind === 'platformatic' ? PlatformaticPartitionReader : KafkajsPartitionReader;
const num = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);
const membership = process.env.LEDGER_MEMBERSHIP as 'static' | 'elastic' | undefined;
const worker = createWorker(app, {
  store,
  reader: new Reader({ brokers: env('KAFKA_BROKERS').split(','), logger }),
  logger,
  batchMaxRecords: Number(process.env.LEDGER_BATCH ?? 200),
  ...(process.env.LEDGER_CRASH_BUDGET ? { crashBudget: Number(process.env.LEDGER_CRASH_BUDGET) } : {}),
  ...(process.env.LEDGER_WORKER_ID ? { workerId: process.env.LEDGER_WORKER_ID } : {}),
  ...(membership ? { membership } : {}),
  ...(num('LEDGER_LEASE_MS') ? { leaseMs: num('LEDGER_LEASE_MS') } : {}),
  ...(num('LEDGER_HEARTBEAT_MS') ? { heartbeatIntervalMs: num('LEDGER_HEARTBEAT_MS') } : {}),
  ...(num('LEDGER_SESSION_TIMEOUT_MS') ? { sessionTimeoutMs: num('LEDGER_SESSION_TIMEOUT_MS') } : {}),
  ...(num('LEDGER_PARTITION_REFRESH_MS') ? { partitionRefreshMs: num('LEDGER_PARTITION_REFRESH_MS') } : {}),
  fetchMaxWaitMs: 200,
});
worker.on('commit', (c) => say(`phase committed ${c.partition}:${c.nextOffset}`));
worker.on('claim', (c) => say(`event claim ${c.partition} ${c.epoch}`));
worker.on('release', (c) => say(`event release ${c.partition} ${c.epoch}`));
worker.on('fenced', (c) => say(`event fenced ${c.partition} ${c.epoch} ${c.action} ${c.detectedBy}`));
const signals = handleSignals(worker, logger);
await worker.start();
say('phase running');
try {
  await worker.done;
  process.exitCode = signals.aborted ? 130 : 0;
} catch {
  process.exitCode = 1;
}
signals.dispose();
