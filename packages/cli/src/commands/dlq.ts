import { ConfigError, consoleLogger } from '@oncely/core';
import { type DeadLetterEntry, type DeadLetterSelection, DeadLetters, PostgresStore } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import { type ConnectionFlags, ExitCode, resolveConnections } from '../config.js';
import { flags as addFlags } from '../flags.js';
import { ACTOR_FLAG, connectionOptions, JSON_FLAG, parseBigint, parseDate } from '../options.js';
import { human, printJson, table } from '../output.js';
import { loadApp } from './run.js';

/** Flags shared by the `oncely dlq` verbs. */
export interface DlqFlags extends ConnectionFlags {
  group?: string;
  topic?: string;
  json?: boolean;
  actor?: string;
}

/** Dead letters need only the database: requeue re-runs the handler on the stored bytes, Kafka is not read. */
async function withDeadLetters<T>(flags: DlqFlags, fn: (dlq: DeadLetters) => Promise<T>): Promise<T> {
  const conn = resolveConnections(flags, { kafka: false });
  const store = new PostgresStore({ connectionString: conn.databaseUrl, schema: conn.schema, poolMax: 2 });
  try {
    await store.assertMigrated();
    return await fn(new DeadLetters({ store, actor: flags.actor }));
  } finally {
    await store.close().catch(() => {});
  }
}

const ids = (raw: string[]) => raw.map((s) => parseBigint('ID', s));

/** Bytes for people: the text when it is printable UTF-8, else base64 (and which one it is). */
export function showBytes(b: Buffer | null): { encoding: 'utf8' | 'base64' | null; text: string | null } {
  if (b === null) return { encoding: null, text: null };
  try {
    const s = new TextDecoder('utf-8', { fatal: true }).decode(b);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what makes bytes unprintable
    if (!/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s)) return { encoding: 'utf8', text: s };
  } catch {
    // not UTF-8
  }
  return { encoding: 'base64', text: b.toString('base64') };
}

/** A dead letter for `--json`: bytes both as base64 (exact) and as text when printable. */
function toJsonEntry(d: DeadLetterEntry) {
  const bytes = (b: Buffer | null) => ({ base64: b?.toString('base64') ?? null, ...showBytes(b) });
  return {
    ...d,
    key: bytes(d.key),
    value: bytes(d.value),
    headers: d.headers.map((h) => ({ name: h.name, ...bytes(h.value) })),
  };
}

const oneLine = (s: string, max = 60) => {
  const t = s.replace(/\s+/g, ' ');
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

function renderList(rows: DeadLetterEntry[]): string {
  if (rows.length === 0) return 'no dead letters';
  const now = Date.now();
  return `${table(
    ['ID', 'GROUP', 'TOPIC', 'PARTITION', 'OFFSET', 'ATTEMPTS', 'LAST-FAILURE', 'ERROR'],
    rows.map((d) => [
      d.id,
      d.group,
      d.topic,
      d.partition,
      d.offset,
      d.attempts,
      `${human(now - d.lastFailedAt.getTime())} ago`,
      oneLine(`${d.errorCode ?? d.errorName}: ${d.errorMessage}`),
    ]),
  )}\n\n${rows.length} dead letter(s); \`oncely dlq show ID\` shows one`;
}

function renderOne(d: DeadLetterEntry): string {
  const bytes = (b: Buffer | null) => {
    const s = showBytes(b);
    return s.encoding === null ? '(null)' : s.encoding === 'utf8' ? s.text! : `(base64) ${s.text}`;
  };
  const lines = [
    `id:            ${d.id}${d.replayedAt ? `  (requeued and applied at ${d.replayedAt.toISOString()})` : ''}`,
    `group:         ${d.group}`,
    `record:        ${d.topic}/${d.partition}/${d.offset}`,
    `timestamp:     ${d.timestamp?.toISOString() ?? '-'}`,
    `key:           ${bytes(d.key)}`,
    `value:         ${bytes(d.value)}`,
    `headers:       ${d.headers.length === 0 ? '(none)' : ''}`,
    ...d.headers.map((h) => `  ${h.name}: ${bytes(h.value)}`),
    `error:         ${d.errorName}${d.errorCode ? ` [${d.errorCode}]` : ''}: ${d.errorMessage}`,
    `attempts:      ${d.attempts}`,
    `first failure: ${d.firstFailedAt.toISOString()}`,
    `last failure:  ${d.lastFailedAt.toISOString()}`,
    `worker:        ${d.workerId ?? '-'} (epoch ${d.epoch ?? '-'})`,
    `stack:`,
    ...(d.errorStack ?? '(none)').split('\n').map((l) => `  ${l}`),
  ];
  return lines.join('\n');
}

/** `oncely dlq list`. */
export async function dlqList(flags: DlqFlags & { replayed?: boolean; limit?: string }): Promise<number> {
  const limit = flags.limit === undefined ? 1000 : Number(parseBigint('--limit', flags.limit));
  return withDeadLetters(flags, async (dlq) => {
    const rows = await dlq.list({ group: flags.group, topic: flags.topic, includeReplayed: flags.replayed }, { limit });
    if (flags.json) printJson(rows.map(toJsonEntry));
    else process.stdout.write(`${renderList(rows)}\n`);
    return ExitCode.OK;
  });
}

/** `oncely dlq show ID`. */
export async function dlqShow(id: string, flags: DlqFlags): Promise<number> {
  const [n] = ids([id]);
  return withDeadLetters(flags, async (dlq) => {
    const d = await dlq.get(n!);
    if (!d) {
      process.stderr.write(`oncely: no dead letter with id ${id}; \`oncely dlq list\` shows them.\n`);
      return ExitCode.FAILED;
    }
    if (flags.json) printJson(toJsonEntry(d));
    else process.stdout.write(`${renderOne(d)}\n`);
    return ExitCode.OK;
  });
}

/** Turns `ID…` or `--all --group G [--topic T]` into a selection, refusing anything in between. */
function selection(raw: string[], flags: DlqFlags & { all?: boolean; before?: string }, verb: string): DeadLetterSelection {
  const before = flags.before === undefined ? undefined : parseDate('--before', flags.before);
  if (raw.length > 0) return { ids: ids(raw) };
  if (!flags.group) {
    throw usage(
      `dlq ${verb} needs dead-letter ids, or ${verb === 'requeue' ? '--all ' : ''}--group G (with --topic T to narrow it).`,
    );
  }
  if (verb === 'requeue' && !flags.all)
    throw usage('dlq requeue --group G needs --all to requeue every pending dead letter of G.');
  return { group: flags.group, topic: flags.topic, before };
}

const usage = (message: string) => new ConfigError(message);

/** With ids given, a --group/--topic/--before that came from the environment is no competing selection: only typed ones are. */
function typedScope<F extends DlqFlags & { before?: string }>(raw: string[], flags: F, cmd: Command): F {
  if (raw.length === 0) return flags;
  const out = { ...flags };
  for (const key of ['group', 'topic', 'before'] as const) if (cmd.getOptionValueSource(key) === 'env') delete out[key];
  return out;
}

/** `oncely dlq requeue`. */
export async function dlqRequeue(raw: string[], flags: DlqFlags & { all?: boolean; app: string }): Promise<number> {
  const sel = selectionOrUsage(raw, flags, 'requeue');
  const app = (await loadApp(flags.app)) as Parameters<DeadLetters['requeue']>[0];
  return withDeadLetters(flags, async (dlq) => {
    const outcomes = await dlq.requeue(app, sel, { logger: consoleLogger({ level: 'warn' }) });
    const failed = outcomes.filter((o) => o.status === 'failed');
    if (flags.json) printJson({ applied: outcomes.length - failed.length, failed: failed.length, outcomes });
    else {
      for (const o of outcomes) {
        const where = `${o.topic}/${o.partition}/${o.offset}`;
        process.stdout.write(
          o.status === 'applied'
            ? `dead letter ${o.id} (${where}): applied once and marked requeued\n`
            : `dead letter ${o.id} (${where}): FAILED again, still dead-lettered: ${o.error?.code ?? o.error?.name}: ${o.error?.message}\n`,
        );
      }
      process.stdout.write(
        outcomes.length === 0
          ? 'nothing to requeue (no pending dead letters match)\n'
          : `${outcomes.length - failed.length} applied, ${failed.length} failed${failed.length > 0 ? ' (fix the handler, then requeue them again)' : ''}\n`,
      );
    }
    return failed.length > 0 ? ExitCode.FAILED : ExitCode.OK;
  });
}

/** `oncely dlq purge`. */
export async function dlqPurge(raw: string[], flags: DlqFlags & { before?: string; yes?: boolean }): Promise<number> {
  const sel = selectionOrUsage(raw, flags, 'purge');
  return withDeadLetters(flags, async (dlq) => {
    if (!flags.yes) {
      const n = await dlq.count(sel);
      if (flags.json) printJson({ deleted: 0, wouldDelete: n, refused: 'pass --yes to delete' });
      else
        process.stderr.write(
          `oncely: dlq purge would delete ${n} dead letter(s); nothing was deleted. Add --yes to delete them.\n`,
        );
      return ExitCode.USAGE;
    }
    const r = await dlq.purge(sel);
    if (flags.json) printJson(r);
    else process.stdout.write(`deleted ${r.deleted} dead letter(s) (admin_audit ${r.auditId})\n`);
    return ExitCode.OK;
  });
}

function selectionOrUsage(
  raw: string[],
  flags: DlqFlags & { all?: boolean; before?: string },
  verb: string,
): DeadLetterSelection {
  if (raw.length > 0 && (flags.all || flags.group || flags.topic || flags.before)) {
    throw usage(`dlq ${verb}: give either dead-letter ids or --group/--topic${verb === 'purge' ? '/--before' : ''}, not both.`);
  }
  return selection(raw, flags, verb);
}

/** Registers `oncely dlq list|show|requeue|purge`. */
export function registerDlq(program: Command, setCode: (code: number) => void): void {
  const dlq = program.command('dlq').description('Dead letters: list, show, requeue (with the fixed handler), purge');
  const wrap =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) =>
      setCode(await fn(...args));
  // --all and --yes are always typed: a variable must never widen or confirm a requeue or a purge.
  connectionOptions(
    addFlags(dlq.command('list').description('Pending dead letters, oldest first'), [
      { flags: '--group <group>', description: 'only this group' },
      { flags: '--topic <topic>', description: 'only this topic' },
      { flags: '--replayed', description: 'include dead letters already requeued' },
      { flags: '--limit <n>', description: 'at most this many', default: '1000' },
      { ...JSON_FLAG, description: 'JSON for scripts (key/value/headers as base64, and as text when printable)' },
    ]),
    false,
  ).action(wrap((flags: DlqFlags & { replayed?: boolean; limit?: string }) => dlqList(flags)));
  connectionOptions(
    addFlags(
      dlq
        .command('show')
        .argument('<id>', 'dead-letter id (from dlq list)')
        .description('One dead letter: the record (key, value, headers), the error and its stack, attempts, first/last failure'),
      [JSON_FLAG],
    ),
    false,
  ).action(wrap((id: string, flags: DlqFlags) => dlqShow(id, flags)));
  connectionOptions(
    addFlags(
      dlq
        .command('requeue')
        .argument('[ids...]', 'dead-letter ids')
        .description(
          "Re-run the app's current handler on dead letters, each applied exactly once (handler writes and the dead letter's requeue commit together) or not at all",
        ),
      [
        {
          flags: '--app <module>',
          description: 'the app module with the fixed handler (default export or `app` from defineApp)',
          required: true,
        },
        { flags: '--all', description: 'every pending dead letter of --group (narrowed by --topic)', env: false },
        { flags: '--group <group>', description: 'with --all: the group' },
        { flags: '--topic <topic>', description: 'with --all: only this topic' },
        ACTOR_FLAG,
        JSON_FLAG,
      ],
    ),
    false,
  ).action(
    wrap((raw: string[], flags: DlqFlags & { all?: boolean; app: string }, cmd: Command) =>
      dlqRequeue(raw, typedScope(raw, flags, cmd)),
    ),
  );
  connectionOptions(
    addFlags(
      dlq
        .command('purge')
        .argument('[ids...]', 'dead-letter ids')
        .description('Delete dead letters for good (requeued ones too); without --yes only says how many it would delete'),
      [
        { flags: '--group <group>', description: 'every dead letter of this group' },
        { flags: '--topic <topic>', description: 'with --group: only this topic' },
        { flags: '--before <iso>', description: 'with --group: only those dead-lettered before this ISO 8601 time' },
        { flags: '--yes', description: 'really delete', env: false },
        ACTOR_FLAG,
        JSON_FLAG,
      ],
    ),
    false,
  ).action(
    wrap((raw: string[], flags: DlqFlags & { before?: string; yes?: boolean }, cmd: Command) =>
      dlqPurge(raw, typedScope(raw, flags, cmd)),
    ),
  );
}
