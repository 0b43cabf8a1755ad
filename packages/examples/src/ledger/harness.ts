/**
 * What the demo and the crash test share: start and SIGKILL ledger worker processes, produce a
 * payment stream with a known expected outcome, wait until the stored positions catch up, and
 * audit the database row by row.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import type { Knex } from 'knex';
import type { Payment } from './app.js';

/** Environment of a ledger worker process. */
export interface LedgerWorkerEnv {
  KAFKA_BROKERS: string;
  DATABASE_URL: string;
  ONCELY_SCHEMA: string;
  LEDGER_TOPIC: string;
  LEDGER_GROUP: string;
  LEDGER_SCHEMA: string;
  LEDGER_TRACE?: '1';
  LEDGER_HANDLER_DELAY_MS?: string;
  LEDGER_STALL_MS?: string;
  LEDGER_BATCH?: string;
  LEDGER_CRASH_BUDGET?: string;
  LEDGER_WORKER_ID?: string;
  LEDGER_MEMBERSHIP?: 'static' | 'elastic';
  LEDGER_LEASE_MS?: string;
  LEDGER_HEARTBEAT_MS?: string;
  LEDGER_SESSION_TIMEOUT_MS?: string;
  LEDGER_PARTITION_REFRESH_MS?: string;
  LEDGER_READER?: 'kafkajs' | 'platformatic';
  ONCELY_LOG_LEVEL?: string;
}

/** A running worker process and the phase lines it prints. */
export interface LedgerWorkerProcess {
  child: ChildProcess;
  /** Resolves with the first phase or event line matching, or rejects when the process exits first. */
  waitFor(pattern: RegExp): Promise<string>;
  /** The last phase line seen. */
  lastPhase(): string | undefined;
  /** Every `event …` line seen (claims, releases, fences), in order. */
  events(): readonly string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** Starts `worker.ts` (under tsx, with the workspace sources) or `worker.js` (built) as a child process. */
export function spawnLedgerWorker(env: LedgerWorkerEnv): LedgerWorkerProcess {
  const self = fileURLToPath(import.meta.url);
  const fromSource = self.endsWith('.ts');
  const script = self.replace(/harness\.(ts|js)$/, `worker.$1`);
  const args = fromSource ? ['--conditions=source', '--import', 'tsx', script] : [script];
  // tsx reads one tsconfig; the base one enables the legacy decorators inversify uses.
  const tsconfig = fileURLToPath(new URL('../../../../tsconfig.base.json', import.meta.url));
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...(fromSource ? { TSX_TSCONFIG_PATH: tsconfig } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let last: string | undefined;
  const events: string[] = [];
  let err = '';
  const waiters: Array<{ pattern: RegExp; resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('event ')) events.push(line);
    else if (line.startsWith('phase ')) last = line;
    else return;
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pattern.test(line)) waiters.splice(i, 1)[0]!.resolve(line);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      for (const w of waiters.splice(0))
        w.reject(new Error(`worker exited (code ${code}, signal ${signal}) before printing ${w.pattern}\n${err}`));
      resolve({ code, signal });
    });
  });
  return {
    child,
    exited,
    lastPhase: () => last,
    events: () => events,
    stderr: () => err,
    waitFor: (pattern) => new Promise((resolve, reject) => waiters.push({ pattern, resolve, reject })),
  };
}

/** What the producer sent: the truth the audit compares against. */
export interface Produced {
  count: number;
  expectedBalances: Map<string, bigint>;
  ids: Set<string>;
}

/** Options of {@link producePayments}. */
export interface ProduceOptions {
  brokers: string[];
  topic: string;
  count: number;
  accounts?: number;
  /** Payments per send call. Default 500. */
  chunk?: number;
  /** Pause between sends in ms, to spread the stream over time. Default 0. */
  pauseMs?: number;
  signal?: AbortSignal;
  onProgress?(sent: number): void;
}

/** Produces `count` payments keyed by account with an idempotent producer; returns the expected outcome. */
export async function producePayments(o: ProduceOptions): Promise<Produced> {
  const kafka = new Kafka({ clientId: 'ledger-producer', brokers: o.brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const accounts = o.accounts ?? 50;
  const chunk = o.chunk ?? 500;
  const produced: Produced = { count: 0, expectedBalances: new Map(), ids: new Set() };
  const run = randomBytes(3).toString('hex');
  try {
    while (produced.count < o.count && !o.signal?.aborted) {
      const n = Math.min(chunk, o.count - produced.count);
      const batch: Payment[] = [];
      for (let i = 0; i < n; i++) {
        const seq = produced.count + i;
        const account = `acct-${String(Math.floor(Math.random() * accounts)).padStart(3, '0')}`;
        const cents = Math.floor(Math.random() * 20_000) - 9_000;
        batch.push({ id: `${run}-${seq}`, account, cents });
      }
      await producer.send({
        topic: o.topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: batch.map((p) => ({ key: p.account, value: JSON.stringify(p) })),
      });
      for (const p of batch) {
        produced.expectedBalances.set(p.account, (produced.expectedBalances.get(p.account) ?? 0n) + BigInt(p.cents));
        produced.ids.add(p.id);
      }
      produced.count += n;
      o.onProgress?.(produced.count);
      if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
    }
  } finally {
    await producer.disconnect();
  }
  return produced;
}

/** The high watermark of every partition of a topic. */
export async function highWatermarks(brokers: string[], topic: string): Promise<Map<number, bigint>> {
  const kafka = new Kafka({ clientId: 'ledger-audit', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** Waits until the group's stored next_offset reaches `targets` on every partition. */
export async function waitCaughtUp(
  knex: Knex,
  oncelySchema: string,
  group: string,
  topic: string,
  targets: Map<number, bigint>,
  options: { timeoutMs?: number; onProgress?(done: bigint, total: bigint): void } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 180_000);
  const total = [...targets.values()].reduce((a, b) => a + b, 0n);
  for (;;) {
    const rows = await knex
      .withSchema(oncelySchema)
      .from('partitions')
      .where({ group_id: group, topic })
      .select<Array<{ partition: number; next_offset: string }>>('partition', 'next_offset');
    const pos = new Map(rows.map((r) => [r.partition, BigInt(r.next_offset)]));
    const done = [...targets].reduce((a, [p]) => a + (pos.get(p) ?? 0n), 0n);
    options.onProgress?.(done, total);
    if ([...targets].every(([p, hw]) => (pos.get(p) ?? -1n) >= hw)) return;
    if (Date.now() > deadline) {
      const behind = [...targets]
        .filter(([p, hw]) => (pos.get(p) ?? -1n) < hw)
        .map(([p, hw]) => `${p}: ${pos.get(p) ?? 'no row'}/${hw}`)
        .join(', ');
      throw new Error(`not caught up after ${options.timeoutMs ?? 180_000} ms: ${done}/${total} (behind: ${behind})`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** What the audit found. */
export interface AuditResult {
  produced: number;
  appliedRows: number;
  distinctApplied: number;
  duplicates: number;
  missing: number;
  unknown: number;
  balancesChecked: number;
  balanceMismatches: Array<{ account: string; expected: bigint; actual: bigint }>;
  orderViolations: number;
  ok: boolean;
}

/** Compares the database with what was produced, record by record. */
export async function auditLedger(knex: Knex, ledgerSchemaName: string, produced: Produced): Promise<AuditResult> {
  const applied = await knex.raw<{ rows: Array<{ payment_id: string; n: string }> }>(
    `select payment_id, count(*) as n from ${ledgerSchemaName}.applied group by payment_id`,
  );
  let appliedRows = 0;
  let duplicates = 0;
  let unknown = 0;
  const seen = new Set<string>();
  for (const r of applied.rows) {
    const n = Number(r.n);
    appliedRows += n;
    if (n > 1) duplicates += n - 1;
    if (!produced.ids.has(r.payment_id)) unknown++;
    seen.add(r.payment_id);
  }
  let missing = 0;
  for (const id of produced.ids) if (!seen.has(id)) missing++;
  const balances = await knex.raw<{ rows: Array<{ account: string; cents: string }> }>(
    `select account, cents from ${ledgerSchemaName}.balances`,
  );
  const actual = new Map(balances.rows.map((r) => [r.account, BigInt(r.cents)]));
  const balanceMismatches: AuditResult['balanceMismatches'] = [];
  for (const [account, expected] of produced.expectedBalances) {
    const a = actual.get(account) ?? 0n;
    if (a !== expected) balanceMismatches.push({ account, expected, actual: a });
  }
  // Per partition, application order (the serial id) must follow offset order.
  const order = await knex.raw<{ rows: Array<{ violations: string }> }>(
    `select count(*) as violations from (
       select "offset" < lag("offset") over (partition by topic, partition order by id) as back from ${ledgerSchemaName}.applied
     ) t where back`,
  );
  const orderViolations = Number(order.rows[0]?.violations ?? 0);
  const result: AuditResult = {
    produced: produced.count,
    appliedRows,
    distinctApplied: seen.size,
    duplicates,
    missing,
    unknown,
    balancesChecked: produced.expectedBalances.size,
    balanceMismatches,
    orderViolations,
    ok: false,
  };
  result.ok =
    duplicates === 0 &&
    missing === 0 &&
    unknown === 0 &&
    balanceMismatches.length === 0 &&
    orderViolations === 0 &&
    appliedRows === produced.count;
  return result;
}
