import { ConfigError, type Logger, type PartitionReader, silentLogger } from '@oncely/core';
import { OffsetsAdmin, PostgresStore, type TopicScope } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import { type ConnectionFlags, isConfigurationError, resolveConnections } from './config.js';
import { type FlagSpec, flags, inFlagTerms } from './flags.js';
import { createReader, type KafkaFlags, kafkaOptions, kafkaReaderOptions, READER_FLAG_NAMES } from './kafka.js';

/** --database-url and --schema, which every command has. */
export const DATABASE_FLAGS: readonly FlagSpec[] = [
  { flags: '--database-url <url>', description: 'PostgreSQL URL', fallbackEnv: ['DATABASE_URL'] },
  { flags: '--schema <name>', description: "oncely's schema (default oncely)" },
];

/** `--json`, which every command has. */
export const JSON_FLAG: FlagSpec = { flags: '--json', description: 'JSON for scripts' };

/** `--actor`, for the commands that write admin_audit. */
export const ACTOR_FLAG: FlagSpec = { flags: '--actor <name>', description: 'who, for admin_audit (default: user@host)' };

/** Adds the Kafka flags (unless the command never talks to Kafka), --database-url and --schema. */
export function connectionOptions(cmd: Command, kafka = true): Command {
  if (kafka) kafkaOptions(cmd);
  return flags(cmd, DATABASE_FLAGS);
}

/** Store option names as flags, for inFlagTerms. */
export const STORE_FLAG_NAMES: Readonly<Record<string, string>> = {
  connectionString: '--database-url',
  schema: '--schema',
  poolMax: '--pool-size',
  lockTimeoutMs: '--lock-timeout',
  idleInTransactionTimeoutMs: '--idle-in-transaction-timeout',
};

/** Parses `--topic T[:partitions]` (partitions like `0,2,5-7`), repeatable. */
export function parseTopics(specs: string[] | undefined): TopicScope[] | undefined {
  if (!specs || specs.length === 0) return undefined;
  return specs.map((spec) => {
    const i = spec.lastIndexOf(':');
    if (i < 0) return { topic: spec };
    const topic = spec.slice(0, i);
    const list = spec.slice(i + 1);
    if (!topic) throw new ConfigError(`--topic ${spec}: the topic name is missing (expected T or T:0,1,4-6).`);
    const partitions: number[] = [];
    for (const part of list.split(',')) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
      if (!m) throw new ConfigError(`--topic ${spec}: bad partition list "${list}" (expected e.g. 0,1,4-6).`);
      const from = Number(m[1]);
      const to = m[2] === undefined ? from : Number(m[2]);
      if (to < from) throw new ConfigError(`--topic ${spec}: range ${part} runs backwards.`);
      for (let p = from; p <= to; p++) partitions.push(p);
    }
    return { topic, partitions };
  });
}

/** Parses an ISO 8601 date-time for a flag; a bare date means midnight UTC. */
export function parseDate(flag: string, value: string): Date {
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new ConfigError(`${flag} must be an ISO 8601 date-time such as 2024-05-01T12:00:00Z; got ${value}.`);
  return new Date(t);
}

/** Parses a non-negative or signed integer flag into a bigint. */
export function parseBigint(flag: string, value: string, signed = false): bigint {
  if (!(signed ? /^[+-]?\d+$/ : /^\d+$/).test(value.trim())) {
    throw new ConfigError(
      `${flag} must be ${signed ? 'an integer such as -100 or +50' : 'a non-negative integer'}; got ${value}.`,
    );
  }
  return BigInt(value.trim());
}

/** Parses an ISO 8601 duration `PnDTnHnMnS` (as kafka-consumer-groups --by-duration) into milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(value.trim());
  if (!m || value.trim() === 'P' || value.trim().endsWith('T')) {
    throw new ConfigError(`${flag} must be an ISO 8601 duration such as PT30M, P1DT2H or PT90S; got ${value}.`);
  }
  const [, d, h, min, s] = m;
  return ((Number(d ?? 0) * 24 + Number(h ?? 0)) * 60 + Number(min ?? 0)) * 60_000 + Math.round(Number(s ?? 0) * 1000);
}

/** What withAdmin could reach besides the database. */
export interface AdminReach {
  /** Why Kafka is not used, when `kafka: 'optional'` and it could not be reached (or no brokers were given). */
  kafkaUnavailable?: string;
}

/**
 * An admin over the configured database (and Kafka, when `kafka`); closes what it opened. With
 * `kafka: 'optional'` a Kafka that cannot be reached (or no brokers at all) is not an error: the
 * admin works without it and `reach.kafkaUnavailable` says why. A configuration error (rejected
 * credentials or certificates) still fails: waiting or going on without Kafka would hide it. A
 * schema not migrated to this version fails before the command runs, naming the migration and
 * `oncely migrate`.
 */
export async function withAdmin<T>(
  flags: ConnectionFlags & KafkaFlags & { actor?: string },
  need: { kafka: boolean | 'optional' },
  fn: (admin: OffsetsAdmin, store: PostgresStore, reach: AdminReach) => Promise<T>,
  logger: Logger = silentLogger,
): Promise<T> {
  const conn = resolveConnections(flags, { kafka: need.kafka === true });
  const useKafka = need.kafka === true || (need.kafka === 'optional' && conn.brokers.length > 0);
  // Everything is validated before anything opens: a bad flag exits at once.
  const readerOptions = useKafka ? kafkaReaderOptions(flags, conn.brokers, 'oncely-cli') : undefined;
  const store = inFlagTerms(
    STORE_FLAG_NAMES,
    () => new PostgresStore({ connectionString: conn.databaseUrl, schema: conn.schema, poolMax: 2 }),
  );
  let reader: PartitionReader | undefined;
  const reach: AdminReach = {};
  if (need.kafka === 'optional' && !useKafka) reach.kafkaUnavailable = 'no brokers given';
  try {
    if (readerOptions) {
      // An optional Kafka is tried briefly: the answer without it is worth more than a long wait.
      const options = need.kafka === 'optional' ? { ...readerOptions, retries: 2 } : readerOptions;
      reader = inFlagTerms(READER_FLAG_NAMES, () => createReader(flags, { ...options, logger }));
    }
    if (reader) {
      try {
        await reader.connect();
      } catch (e) {
        if (need.kafka !== 'optional' || isConfigurationError(e)) throw e;
        reach.kafkaUnavailable = (e as Error).message;
        await reader.close().catch(() => {});
        reader = undefined;
      }
    }
    // After the reader's connect, which is where a reader whose library is missing says so: a
    // missing install is a flag's problem, reported whatever state the schema is in.
    await store.assertMigrated();
    return await fn(new OffsetsAdmin({ store, kafka: reader, actor: flags.actor }), store, reach);
  } finally {
    await reader?.close().catch(() => {});
    await store.close().catch(() => {});
  }
}
