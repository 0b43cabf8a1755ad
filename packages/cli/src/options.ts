import { ConfigError, KafkajsPartitionReader, type Logger, silentLogger } from '@oncely/core';
import { OffsetsAdmin, PostgresStore, type TopicScope } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import { type ConnectionFlags, resolveConnections } from './config.js';

/** Adds --brokers (unless the command never talks to Kafka), --database-url and --schema. */
export function connectionOptions(cmd: Command, kafka = true): Command {
  if (kafka) cmd.option('--brokers <list>', 'Kafka bootstrap brokers, host:port[,…] (default: $KAFKA_BROKERS)');
  return cmd
    .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL)')
    .option('--schema <name>', "oncely's schema (default: $ONCELY_SCHEMA or oncely)");
}

/** Collects a repeatable option into an array. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

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

/** An admin over the configured database (and Kafka, when `kafka`); closes what it opened. */
export async function withAdmin<T>(
  flags: ConnectionFlags & { actor?: string },
  need: { kafka: boolean },
  fn: (admin: OffsetsAdmin, store: PostgresStore) => Promise<T>,
  logger: Logger = silentLogger,
): Promise<T> {
  const conn = resolveConnections(flags, need);
  const store = new PostgresStore({ connectionString: conn.databaseUrl, schema: conn.schema, poolMax: 2 });
  const reader =
    conn.brokers.length > 0 ? new KafkajsPartitionReader({ brokers: conn.brokers, clientId: 'oncely-cli', logger }) : undefined;
  try {
    if (reader) await reader.connect();
    return await fn(new OffsetsAdmin({ store, kafka: reader, actor: flags.actor }), store);
  } finally {
    await reader?.close().catch(() => {});
    await store.close().catch(() => {});
  }
}
