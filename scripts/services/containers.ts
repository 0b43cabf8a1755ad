/**
 * The testcontainers provider: on a machine with a Docker engine (a laptop, a hosted CI) it can
 * supply both services instead of the local broker. It is chosen only when an engine answers and
 * ONCELY_SERVICES=containers asks for it, or Java/Maven are missing. No test requires it.
 */
import { run } from './util.js';

const kafkaImage = process.env.ONCELY_KAFKA_IMAGE ?? 'confluentinc/cp-kafka:7.9.0';
const postgresImage = process.env.ONCELY_POSTGRES_IMAGE ?? 'postgres:16-alpine';

/** Whether a Docker engine answers (the client alone is not enough). */
export function dockerEngineAnswers(): boolean {
  const r = run('docker', ['info', '--format', '{{.ServerVersion}}']);
  return r.ok && r.stdout.trim().length > 0;
}

export interface ContainerServices {
  brokers: string[];
  databaseUrl: string;
  containerIds: string[];
}

/**
 * Starts Kafka (KRaft) and PostgreSQL containers. The reaper is disabled so they outlive this
 * process (`services up` exits); `services down` removes them by id.
 */
export async function startContainers(): Promise<ContainerServices> {
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const [kafka, postgres] = await Promise.all([
    new KafkaContainer(kafkaImage)
      .withKraft()
      .withEnvironment({ KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false', KAFKA_LOG_SEGMENT_BYTES: '1048576' })
      .start(),
    new PostgreSqlContainer(postgresImage).withDatabase('oncely').start(),
  ]);
  return {
    brokers: [`${kafka.getHost()}:${kafka.getMappedPort(9093)}`],
    databaseUrl: postgres.getConnectionUri(),
    containerIds: [kafka.getId(), postgres.getId()],
  };
}

/** Removes containers started by `startContainers`. */
export function stopContainers(ids: string[]): void {
  if (ids.length > 0) run('docker', ['rm', '-f', ...ids]);
}
