/**
 * One entry point that makes a real Kafka broker and a real PostgreSQL available, for the tests,
 * the demo and developers: `pnpm services up|down|status|env`.
 *
 * Kafka: KAFKA_BROKERS when set; else the broker this project started (if running); else, unless
 * ONCELY_KAFKA_PORT chose the port of ours, a Kafka broker (ApiVersions and metadata answered) on
 * 127.0.0.1:9092; else a single-node KRaft broker started from the Apache Kafka jars
 * that Maven resolves (or containers, when a Docker engine answers and Java/Maven are missing or
 * ONCELY_SERVICES=containers).
 * PostgreSQL: DATABASE_URL when set; else 127.0.0.1:5432; else a private initdb cluster.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dockerEngineAnswers, startContainers, stopContainers } from './containers.js';
import { brokerLog, kafkaAnswers, localBrokerPid, localBrokers, startLocalKafka, stopLocalKafka } from './kafka.js';
import { stateDir, stateFile } from './paths.js';
import { ensurePostgres, stopPrivateCluster } from './postgres.js';
import { kafkaApiVersions } from './probe.js';
import { redactUrl, run, ServiceError } from './util.js';

export { ServiceError } from './util.js';

export interface Services {
  kafka: {
    brokers: string[];
    source: 'env' | 'local-broker' | 'existing-9092' | 'containers';
    pid?: number;
    startedNow: boolean;
  };
  postgres: { url: string; source: 'env' | 'local' | 'private' | 'containers' };
  containerIds?: string[];
}

function readState(): Partial<Services> {
  if (!existsSync(stateFile)) return {};
  try {
    return JSON.parse(readFileSync(stateFile, 'utf8')) as Partial<Services>;
  } catch {
    return {};
  }
}

function writeState(s: Services): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(stateFile, `${JSON.stringify(s, null, 2)}\n`);
}

function wantContainers(): boolean {
  if (process.env.ONCELY_SERVICES === 'containers') return true;
  if (process.env.ONCELY_SERVICES === 'local') return false;
  const haveJava = !run(process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : 'java', ['-version']).missing;
  const haveMaven = !run('mvn', ['-v']).missing;
  return !(haveJava && haveMaven) && dockerEngineAnswers();
}

/**
 * Where `up` may find a broker it did not start: 127.0.0.1:9092, the usual local one. Not when
 * ONCELY_KAFKA_PORT is set: choosing our broker's port means "use the project's broker there".
 */
export function adoptableBroker(env: NodeJS.ProcessEnv = process.env): { host: string; port: number } | undefined {
  return env.ONCELY_KAFKA_PORT ? undefined : { host: '127.0.0.1', port: 9092 };
}

/** A port is adopted only when it answers as Kafka does, and its metadata lists a broker. */
async function isKafkaBroker(at: { host: string; port: number }): Promise<boolean> {
  return (await kafkaApiVersions(at.host, at.port)) !== undefined && (await kafkaAnswers([`${at.host}:${at.port}`], 2000));
}

/** Makes both services available (idempotent) and returns where they are. */
export async function up(): Promise<Services> {
  const previous = readState();
  if (!process.env.KAFKA_BROKERS && previous.kafka?.source === 'containers' && previous.containerIds) {
    if (await kafkaAnswers(previous.kafka.brokers))
      return { ...(previous as Services), kafka: { ...previous.kafka, startedNow: false } };
  }
  if (!process.env.KAFKA_BROKERS && !process.env.DATABASE_URL && localBrokerPid() === undefined && wantContainers()) {
    const c = await startContainers();
    const s: Services = {
      kafka: { brokers: c.brokers, source: 'containers', startedNow: true },
      postgres: { url: c.databaseUrl, source: 'containers' },
      containerIds: c.containerIds,
    };
    writeState(s);
    return s;
  }

  const postgres = await ensurePostgres();
  const adopt = adoptableBroker();
  let kafka: Services['kafka'];
  if (process.env.KAFKA_BROKERS) {
    const brokers = process.env.KAFKA_BROKERS.split(',')
      .map((b) => b.trim())
      .filter(Boolean);
    if (!(await kafkaAnswers(brokers, 10_000))) {
      throw new ServiceError(`KAFKA_BROKERS=${brokers.join(',')} is set but no broker answers a metadata request there.`);
    }
    kafka = { brokers, source: 'env', startedNow: false };
  } else if (adopt && localBrokerPid() === undefined && (await isKafkaBroker(adopt))) {
    kafka = { brokers: [`${adopt.host}:${adopt.port}`], source: 'existing-9092', startedNow: false };
  } else {
    const local = await startLocalKafka();
    kafka = { brokers: local.brokers, source: 'local-broker', pid: local.pid, startedNow: local.started };
  }
  const s: Services = { kafka, postgres: { url: postgres.url, source: postgres.source } };
  writeState(s);
  return s;
}

/** Stops what this project started (broker, private cluster, containers); leaves others alone. */
export async function down(opts: { purge?: boolean } = {}): Promise<string[]> {
  const stopped: string[] = [];
  const state = readState();
  if (state.containerIds?.length) {
    stopContainers(state.containerIds);
    stopped.push(`containers ${state.containerIds.join(', ')}`);
  }
  if (await stopLocalKafka(opts)) stopped.push('kafka broker');
  if (stopPrivateCluster()) stopped.push('private postgres cluster');
  rmSync(stateFile, { force: true });
  return stopped;
}

/** Where the services are, without starting anything. */
export async function status(): Promise<{ kafka: string; postgres: string }> {
  const state = readState();
  const brokers = process.env.KAFKA_BROKERS?.split(',') ?? state.kafka?.brokers ?? localBrokers;
  const kafkaUp = await kafkaAnswers(brokers, 2000);
  const pid = localBrokerPid();
  return {
    kafka: `${brokers.join(',')} ${kafkaUp ? 'answers' : 'does not answer'}${pid ? ` (local broker pid ${pid}, log ${brokerLog})` : ''}`,
    postgres: state.postgres?.url
      ? redactUrl(state.postgres.url)
      : process.env.DATABASE_URL
        ? redactUrl(process.env.DATABASE_URL)
        : 'not resolved yet (run `pnpm services up`)',
  };
}

/** Shell lines that export the endpoints, for `eval "$(pnpm --silent services env)"`. */
export function envLines(s: Services): string {
  return [
    `export KAFKA_BROKERS=${shellQuote(s.kafka.brokers.join(','))}`,
    `export DATABASE_URL=${shellQuote(s.postgres.url)}`,
  ].join('\n');
}

/** Single-quoted for a POSIX shell: a password in DATABASE_URL may hold any character. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
