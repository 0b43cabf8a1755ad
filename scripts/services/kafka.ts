import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
// oncely's fixes of kafkajs 2.2.4 (no TimeoutNegativeWarning on Node 24, no listener leak on a dead
// socket) for this process's own kafkajs clients too: they share the copy the adapter patches.
import '../../packages/core/src/kafkajs/internals.js';
import { kafkaDir, repoRoot } from './paths.js';
import { portAnswers, processAlive, run, ServiceError, sleep, tail } from './util.js';

/** Port of the broker the project starts itself; the controller listens on the next one. */
export const localKafkaPort = Number(process.env.ONCELY_KAFKA_PORT ?? 39092);
const host = '127.0.0.1';

const pomFile = join(repoRoot, 'services', 'kafka', 'pom.xml');
// The jars are shared by every broker this project starts; each broker has its own state dir.
const libDir = join(kafkaDir, 'lib');

/**
 * A broker this project starts: its listener port (the controller uses port + 1) and the directory
 * that holds its data, config, logs and pid file. `pnpm services` uses {@link localBroker}; fault
 * tests start private ones on other ports, so killing one never disturbs the shared broker.
 */
export interface BrokerSpec {
  port: number;
  dir: string;
  /** JVM max heap in MB. Default 1024. */
  heapMb?: number;
  /** A SASL_PLAINTEXT listener on `port` (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for these users, name → password). */
  sasl?: { port: number; users: Record<string, string> };
  /**
   * An SSL listener on `port`: `keystore` is a PEM file with the broker's private key (unencrypted
   * PKCS#8) and certificate chain; with `truststore` (PEM CA certificates) clients must present a
   * certificate it signed.
   */
  tls?: { port: number; keystore: string; truststore?: string };
  /** This node's id. Default 1. */
  nodeId?: number;
  /** Port of this node's controller listener. Default port + 1. */
  controllerPort?: number;
  /**
   * The controller quorum of a multi-node cluster: every voter's node id and controller port,
   * this node among them (see {@link clusterSpecs}). Default: this node alone.
   */
  voters?: ReadonlyArray<{ nodeId: number; controllerPort: number }>;
  /** The id the storage is formatted with; the nodes of one cluster share it. Default: a new one. */
  clusterId?: string;
  /** How long a start waits for the broker to answer before it gives up (and kills it). Default 90 000. */
  startTimeoutMs?: number;
  /** server.properties entries on top of the defaults (tests shorten timeouts). */
  config?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * The specs of an n-node cluster of combined broker+controller nodes (an n-voter KRaft quorum),
 * one per entry of `nodes`, node ids 1..n. Start them together (each waits for a quorum).
 */
export function clusterSpecs(
  nodes: ReadonlyArray<{ port: number; controllerPort: number; dir: string }>,
  opts: Pick<BrokerSpec, 'heapMb' | 'startTimeoutMs' | 'config'> = {},
): BrokerSpec[] {
  const voters = nodes.map((n, i) => ({ nodeId: i + 1, controllerPort: n.controllerPort }));
  const clusterId = newClusterId();
  return nodes.map((n, i) => ({ ...n, ...opts, nodeId: i + 1, voters, clusterId }));
}

/** A Kafka cluster id: a random UUID in Kafka's URL-safe base64 form (what `kafka-storage random-uuid` prints). */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    // As Kafka's own generator: an id starting with '-' would read as an option of the storage tool.
    if (!id.startsWith('-')) return id;
  }
}

/** The shared broker of `pnpm services up`. */
export const localBroker: BrokerSpec = { port: localKafkaPort, dir: kafkaDir };

function brokerFiles(spec: BrokerSpec) {
  return {
    dataDir: join(spec.dir, 'data'),
    pidFile: join(spec.dir, 'broker.pid'),
    brokerLog: join(spec.dir, 'broker.log'),
    stdoutLog: join(spec.dir, 'stdout.log'),
    config: join(spec.dir, 'server.properties'),
    log4j: join(spec.dir, 'log4j2.properties'),
  };
}

export const brokerLog = brokerFiles(localBroker).brokerLog;

/** Whether a Kafka broker answers a metadata request at these addresses. */
export async function kafkaAnswers(brokers: string[], timeoutMs = 3000): Promise<boolean> {
  const kafka = new Kafka({
    clientId: 'oncely-services',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(timeoutMs, 2000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

function javaBinary(): string {
  return process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

function checkJava(): string {
  const java = javaBinary();
  const r = run(java, ['-version']);
  if (r.missing || !r.ok) {
    throw new ServiceError(
      `Java was not found (${java}). Kafka ${'4.x'} needs Java 17 or newer: install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME, or point KAFKA_BROKERS at a running broker.`,
    );
  }
  const m = /version "(\d+)/.exec(r.stderr + r.stdout);
  const major = m ? Number(m[1]) : 0;
  if (major < 17) {
    throw new ServiceError(
      `Java ${major} found at ${java}; the Kafka broker needs Java 17 or newer. Set JAVA_HOME to a Java 17+ install.`,
    );
  }
  return java;
}

/** Fills the jar cache from Maven Central once; a stamp of the pom's hash makes later starts skip Maven. */
function ensureJars(): void {
  const pomHash = createHash('sha256').update(readFileSync(pomFile)).digest('hex').slice(0, 16);
  const stamp = join(libDir, `.resolved-${pomHash}`);
  if (existsSync(stamp)) return;
  rmSync(libDir, { recursive: true, force: true });
  mkdirSync(libDir, { recursive: true });
  // stderr: stdout of `services env` is eval'ed by a shell.
  console.error('kafka: resolving the broker jars with Maven (first start only)…');
  const r = run('mvn', [
    '-q',
    '-B',
    '-f',
    pomFile,
    'dependency:copy-dependencies',
    `-DoutputDirectory=${libDir}`,
    '-DincludeScope=runtime',
  ]);
  if (r.missing) {
    throw new ServiceError(
      'Maven (mvn) was not found: install it (apt-get install maven) or point KAFKA_BROKERS at a running broker.',
    );
  }
  if (!r.ok || !readdirSync(libDir).some((f) => f.startsWith('kafka_2.13-'))) {
    throw new ServiceError(
      `Maven could not resolve the Kafka jars from ${pomFile}:\n${(r.stdout + r.stderr).trim().slice(-3000)}`,
    );
  }
  writeFileSync(stamp, new Date().toISOString());
}

function writeConfig(spec: BrokerSpec): string {
  const { dataDir, config, log4j: log4jFile, brokerLog } = brokerFiles(spec);
  const controllerPort = controllerPortOf(spec);
  const nodeId = spec.nodeId ?? 1;
  const voters = spec.voters ?? [{ nodeId, controllerPort }];
  // Clients' listeners; PLAINTEXT stays the inter-broker one, so the extra ones only serve tests.
  const listeners = [`PLAINTEXT://${host}:${spec.port}`];
  if (spec.sasl) listeners.push(`SASL_PLAINTEXT://${host}:${spec.sasl.port}`);
  if (spec.tls) listeners.push(`SSL://${host}:${spec.tls.port}`);
  const security: string[] = [];
  if (spec.sasl) {
    const plainUsers = Object.entries(spec.sasl.users)
      .map(([name, password]) => `user_${name}="${password}"`)
      .join(' ');
    security.push(
      'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
      `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
      // SCRAM credentials live in the cluster metadata (added when the storage is formatted).
      'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    );
  }
  if (spec.tls) {
    security.push('listener.name.ssl.ssl.keystore.type=PEM', `listener.name.ssl.ssl.keystore.location=${spec.tls.keystore}`);
    if (spec.tls.truststore) {
      security.push(
        'listener.name.ssl.ssl.truststore.type=PEM',
        `listener.name.ssl.ssl.truststore.location=${spec.tls.truststore}`,
        'listener.name.ssl.ssl.client.auth=required',
      );
    }
  }
  const props = [
    'process.roles=broker,controller',
    `node.id=${nodeId}`,
    `controller.quorum.voters=${voters.map((v) => `${v.nodeId}@${host}:${v.controllerPort}`).join(',')}`,
    `listeners=${[...listeners, `CONTROLLER://${host}:${controllerPort}`].join(',')}`,
    `advertised.listeners=${listeners.join(',')}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL',
    ...security,
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=3',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=3',
    'group.initial.rebalance.delay.ms=0',
    // Tests create every topic they use, and name its partitions: a typo must fail, not create.
    'auto.create.topics.enable=false',
    'delete.topic.enable=true',
    // Tests use tiny segments and retention to push the log start past a stored offset.
    'log.segment.bytes=1048576',
    'log.retention.check.interval.ms=1000',
    'log.initial.task.delay.ms=0',
    'file.delete.delay.ms=100',
    'log.segment.delete.delay.ms=100',
    ...Object.entries(spec.config ?? {}).map(([k, v]) => `${k}=${String(v)}`),
  ];
  writeFileSync(config, `${props.join('\n')}\n`);
  const log4j = [
    'status = warn',
    'appender.file.type = File',
    'appender.file.name = file',
    `appender.file.fileName = ${brokerLog}`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    'rootLogger.level = info',
    'rootLogger.appenderRef.file.ref = file',
    'logger.kafka.name = kafka',
    'logger.kafka.level = info',
    'logger.state.name = state.change.logger',
    'logger.state.level = warn',
  ];
  writeFileSync(log4jFile, `${log4j.join('\n')}\n`);
  return config;
}

const controllerPortOf = (spec: BrokerSpec): number => spec.controllerPort ?? spec.port + 1;

function readPid(spec: BrokerSpec): number | undefined {
  const { pidFile } = brokerFiles(spec);
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The pid of the broker started with this spec, when it is running. */
export function brokerPid(spec: BrokerSpec): number | undefined {
  const pid = readPid(spec);
  return pid !== undefined && processAlive(pid) ? pid : undefined;
}

/**
 * The client port a running broker listens on: the PLAINTEXT listener of the config it was started
 * with (written before the start, never while it runs).
 */
function runningPort(spec: BrokerSpec): number | undefined {
  const { config } = brokerFiles(spec);
  if (!existsSync(config)) return undefined;
  const m = /^listeners=(?:.*,)?PLAINTEXT:\/\/[^:,]+:(\d+)/m.exec(readFileSync(config, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

/** Whether the broker this project started is running. */
export function localBrokerPid(): number | undefined {
  return brokerPid(localBroker);
}

/** A broker's bootstrap address. */
export const brokerAddresses = (spec: BrokerSpec): string[] => [`${host}:${spec.port}`];

/** The local broker's address. */
export const localBrokers = brokerAddresses(localBroker);

/**
 * Starts a single-node KRaft broker from the jars Maven resolves, unless it already runs.
 * Idempotent: a second call finds the running broker and returns.
 */
export async function startLocalKafka(): Promise<{ brokers: string[]; pid: number; started: boolean }> {
  return startBroker(localBroker);
}

/**
 * Starts the broker of `spec` (formatting its storage on first start) unless it already runs; a
 * restart after SIGKILL reuses the data dir, so topics and records survive as on a real host.
 */
export async function startBroker(spec: BrokerSpec): Promise<{ brokers: string[]; pid: number; started: boolean }> {
  const { dataDir, pidFile, brokerLog, stdoutLog, log4j } = brokerFiles(spec);
  const brokers = brokerAddresses(spec);
  const envHint = spec === localBroker ? ', choose other ports with ONCELY_KAFKA_PORT,' : '';
  mkdirSync(spec.dir, { recursive: true });
  const running = brokerPid(spec);
  if (running !== undefined) {
    // The running broker was started with this state dir's config: on another port, waiting for
    // it on the one asked now can only time out.
    const port = runningPort(spec);
    if (port !== undefined && port !== spec.port) {
      throw new ServiceError(
        spec === localBroker
          ? `This checkout's broker (pid ${running}) is already running on ${host}:${port}, and ${process.env.ONCELY_KAFKA_PORT ? `ONCELY_KAFKA_PORT asks for ${spec.port}` : `ONCELY_KAFKA_PORT is not set (port ${spec.port})`}. ` +
              `Use the running one (ONCELY_KAFKA_PORT=${port}), or stop it first with \`pnpm services down\` and run \`pnpm services up\` again to start one on ${spec.port}.`
          : `The broker of ${spec.dir} (pid ${running}) is already running on ${host}:${port}, not on ${spec.port}: stop it first.`,
      );
    }
    if (await waitForKafka(brokers, 60_000, running)) return { brokers, pid: running, started: false };
    throw new ServiceError(
      `The broker (pid ${running}) runs but does not answer on ${brokers[0]}. Log tail:\n${tail(brokerLog)}`,
    );
  }
  const java = checkJava();
  if ((await portAnswers(host, spec.port)) || (await portAnswers(host, controllerPortOf(spec)))) {
    throw new ServiceError(
      `Port ${spec.port} or ${controllerPortOf(spec)} on ${host} is taken by another process. Free it${envHint} or point KAFKA_BROKERS at a running broker.`,
    );
  }
  ensureJars();
  const config = writeConfig(spec);
  const cp = `${libDir}/*`;
  if (!existsSync(join(dataDir, 'meta.properties'))) {
    const clusterId = spec.clusterId ?? newClusterId();
    const scram = Object.entries(spec.sasl?.users ?? {}).flatMap(([name, password]) =>
      ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${name},password=${password}]`]),
    );
    const fmt = run(java, ['-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', config, ...scram]);
    if (!fmt.ok) throw new ServiceError(`Formatting the Kafka storage in ${dataDir} failed:\n${fmt.stderr || fmt.stdout}`);
  }
  const out = openSync(stdoutLog, 'w');
  const heap = spec.heapMb ?? 1024;
  const child = spawn(
    java,
    [
      `-Xms${Math.min(256, heap)}m`,
      `-Xmx${heap}m`,
      '-XX:+UseG1GC',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${log4j}`,
      '-cp',
      cp,
      'kafka.Kafka',
      config,
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new ServiceError('Could not start java for the Kafka broker.');
  writeFileSync(pidFile, String(pid));
  const startTimeoutMs = spec.startTimeoutMs ?? 90_000;
  if (!(await waitForKafka(brokers, startTimeoutMs, pid))) {
    const alive = processAlive(pid);
    if (alive) process.kill(pid, 'SIGKILL');
    throw new ServiceError(
      `The Kafka broker ${alive ? `did not answer within ${startTimeoutMs / 1000} s` : 'exited during start'}. Output:\n${tail(stdoutLog, 15)}\nBroker log (${brokerLog}):\n${tail(brokerLog)}`,
    );
  }
  return { brokers, pid, started: true };
}

async function waitForKafka(brokers: string[], timeoutMs: number, pid: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return false;
    if (await kafkaAnswers(brokers, 2000)) return true;
    await sleep(500);
  }
  return false;
}

/** Stops the broker this project started; leaves its data unless purge is set. */
export async function stopLocalKafka(opts: { purge?: boolean } = {}): Promise<boolean> {
  return stopBroker(localBroker, opts);
}

/**
 * Stops the broker of `spec`: SIGTERM (a clean shutdown, up to 30 s, then SIGKILL), or SIGKILL at
 * once with `kill` (a crash: the next start recovers its logs). Leaves its data unless purge is set.
 */
export async function stopBroker(spec: BrokerSpec, opts: { purge?: boolean; kill?: boolean } = {}): Promise<boolean> {
  const { pidFile, dataDir } = brokerFiles(spec);
  const pid = brokerPid(spec);
  let stopped = false;
  if (pid !== undefined) {
    process.kill(pid, opts.kill ? 'SIGKILL' : 'SIGTERM');
    const deadline = Date.now() + 30_000;
    while (processAlive(pid) && Date.now() < deadline) await sleep(200);
    if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    while (processAlive(pid)) await sleep(100);
    stopped = true;
  }
  rmSync(pidFile, { force: true });
  if (opts.purge) rmSync(dataDir, { recursive: true, force: true });
  return stopped;
}
