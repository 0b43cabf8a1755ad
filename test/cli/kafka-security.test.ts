/**
 * Kafka over SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and TLS (mutual) through the binary: a
 * private broker with a SASL_PLAINTEXT and an SSL listener (certificates made here with openssl),
 * and every command that talks to Kafka (run with its offset mirror, status, offsets reset
 * --to-datetime, replay) configured from flags and variables. Refused credentials and
 * certificates exit 2 naming what failed, never the password.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { type PrivateBroker, privateBroker } from '../failure/support.js';
import { cleanup } from '../support/cleanup.js';
import { freshSchema, randomName } from '../support/fixtures.js';
import { FIXTURES, makeProjectionTables, oncely, positions } from './support.js';

const V1 = resolve(FIXTURES, 'projection-v1.ts');
const USER = 'alice';
const PASSWORD = 'Sasl-s3ntinel-pw';
const PER_PARTITION = 20;

let kafka: PrivateBroker;
let dir: string;
let topic: string;
let schema: string;
let certs: { ca: string; cert: string; key: string };

/** A CA, a broker certificate for 127.0.0.1 and a client certificate, as PEM files. */
function makeCertificates(at: string) {
  const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: at, stdio: 'pipe' });
  ssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=oncely test CA',
  ]);
  writeFileSync(join(at, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const [name, subject, ext] of [
    ['broker', '/CN=127.0.0.1', ['-extfile', 'san.ext']],
    ['client', '/CN=oncely-client', []],
  ] as const) {
    ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    ssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      ...ext,
    ]);
  }
  // The broker's PEM keystore: its private key (PKCS#8, unencrypted) and its certificate.
  writeFileSync(
    join(at, 'broker-keystore.pem'),
    Buffer.concat([readFileSync(join(at, 'broker.key')), readFileSync(join(at, 'broker.pem'))]),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'oncely-kafka-security-'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  makeCertificates(dir);
  certs = { ca: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key') };
  kafka = await privateBroker({
    sasl: { users: { [USER]: PASSWORD } },
    tls: { keystore: join(dir, 'broker-keystore.pem'), truststore: join(dir, 'ca.pem') },
  });
  // Setup goes through the plain listener; only oncely uses the secured ones.
  const client = new Kafka({ clientId: 'kafka-security', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
  topic = randomName('secure');
  const admin = client.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] });
  await admin.disconnect();
  const producer = client.producer();
  await producer.connect();
  for (let p = 0; p < 2; p++) {
    await producer.send({
      topic,
      messages: Array.from({ length: PER_PARTITION }, (_, seq) => ({
        partition: p,
        value: JSON.stringify({ account: `acct-${seq % 5}`, cents: seq + 1, seq }),
      })),
    });
  }
  await producer.disconnect();
  schema = freshSchema();
  await makeProjectionTables(schema);
});

/** The environment of one app run; the endpoints are the private broker's secured listeners. */
const appEnv = (group: string, extra: Record<string, string> = {}) => ({
  APP_SCHEMA: schema,
  APP_TOPIC: topic,
  APP_GROUP: group,
  ONCELY_SCHEMA: schema,
  // Nothing answers there: only the secured listeners given below can work.
  KAFKA_BROKERS: '127.0.0.1:1',
  ...extra,
});

async function groupOffsets(groupId: string): Promise<Record<string, string>> {
  const admin = new Kafka({ clientId: 'kafka-security', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Object.fromEntries(t!.partitions.map((p) => [`${topic}:${p.partition}`, p.offset]));
  } finally {
    await admin.disconnect();
  }
}

describe('Kafka over SASL', () => {
  it('run (with its mirror), status, offsets reset --to-datetime and replay, under each mechanism', async () => {
    const sasl = kafka.saslBrokers.join(',');
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const done = { [`${topic}:0`]: String(PER_PARTITION), [`${topic}:1`]: String(PER_PARTITION) };

    // PLAIN, flags, the password in ONCELY_KAFKA_SASL_PASSWORD; the mirror writes through SASL too.
    const g1 = randomName('plain');
    const mirror = randomName('mirror');
    const plain = await oncely(
      [
        'run',
        V1,
        '--until',
        'caught-up',
        '--brokers',
        sasl,
        '--kafka-sasl-mechanism',
        'plain',
        '--kafka-sasl-username',
        USER,
        '--mirror-group-id',
        mirror,
      ],
      appEnv(g1, { ONCELY_KAFKA_SASL_PASSWORD: PASSWORD }),
    );
    expect(plain.code, plain.stderr).toBe(0);
    expect(await positions(schema, g1)).toEqual(done);
    expect(await groupOffsets(mirror)).toEqual(done);

    // SCRAM-SHA-256: the password from --kafka-sasl-password-file.
    const g2 = randomName('scram256');
    const s256 = await oncely(
      [
        'run',
        V1,
        '--until',
        'caught-up',
        '--brokers',
        sasl,
        '--kafka-sasl-mechanism',
        'scram-sha-256',
        '--kafka-sasl-username',
        USER,
        '--kafka-sasl-password-file',
        passwordFile,
      ],
      appEnv(g2),
    );
    expect(s256.code, s256.stderr).toBe(0);
    expect(await positions(schema, g2)).toEqual(done);

    // SCRAM-SHA-512: everything from the environment, for every command that reads Kafka.
    const scram512 = {
      ONCELY_BROKERS: sasl,
      ONCELY_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      ONCELY_KAFKA_SASL_USERNAME: USER,
      ONCELY_KAFKA_SASL_PASSWORD_FILE: passwordFile,
    };
    const g3 = randomName('scram512');
    const s512 = await oncely(['run', V1, '--until', 'caught-up'], appEnv(g3, scram512));
    expect(s512.code, s512.stderr).toBe(0);
    expect(await positions(schema, g3)).toEqual(done);

    const status = await oncely(['status', '--group', g3, '--json'], appEnv(g3, scram512));
    expect(status.code, status.stderr).toBe(0);
    const rows = JSON.parse(status.stdout) as Array<{ highWatermark: string; lag: string }>;
    expect(rows.map((r) => [r.highWatermark, r.lag])).toEqual([
      [String(PER_PARTITION), '0'],
      [String(PER_PARTITION), '0'],
    ]);

    const reset = await oncely(
      ['offsets', 'reset', '--group', g3, '--to-datetime', '2000-01-01T00:00:00Z', '--json'],
      appEnv(g3, scram512),
    );
    expect(reset.code, reset.stderr).toBe(0);
    expect((JSON.parse(reset.stdout) as { entries: Array<{ next: string }> }).entries.map((e) => e.next)).toEqual(['0', '0']);

    const g4 = randomName('replayed');
    const replay = await oncely(
      ['replay', '--from-group', g3, '--group', g4, '--to-datetime', '2000-01-01T00:00:00Z'],
      appEnv(g3, scram512),
    );
    expect(replay.code, replay.stderr).toBe(0);
    expect(await positions(schema, g4)).toEqual({ [`${topic}:0`]: '0', [`${topic}:1`]: '0' });

    for (const r of [plain, s256, s512, status, reset, replay]) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });

  it('a wrong password or a wrong listener exits 2 naming the mechanism and the user, never the password', async () => {
    const wrong = 'Wr0ng-s3ntinel-pw';
    const bad = await oncely(
      [
        'status',
        '--brokers',
        kafka.saslBrokers.join(','),
        '--kafka-sasl-mechanism',
        'scram-sha-256',
        '--kafka-sasl-username',
        USER,
      ],
      appEnv('g', { ONCELY_KAFKA_SASL_PASSWORD: wrong, ONCELY_LOG_LEVEL: 'debug' }),
    );
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/KAFKA_AUTH_FAILED: SASL SCRAM-SHA-256 authentication of user "alice" at 127\.0\.0\.1:\d+ failed/);
    expect(bad.stderr).toMatch(/Check the mechanism, the user name and the password/);
    const plainListener = await oncely(
      ['status', '--brokers', kafka.brokers.join(','), '--kafka-sasl-mechanism', 'plain', '--kafka-sasl-username', USER],
      appEnv('g', { ONCELY_KAFKA_SASL_PASSWORD: PASSWORD }),
    );
    expect(plainListener.code).toBe(2);
    expect(plainListener.stderr).toMatch(/the broker takes no SASL on this listener \(ILLEGAL_SASL_STATE\)/);
    for (const r of [bad, plainListener]) {
      expect(r.stdout + r.stderr).not.toContain(wrong);
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    }
  });
});

describe('Kafka over TLS', () => {
  it('mutual TLS from flags and from variables; an unknown CA or a missing client certificate exits 2', async () => {
    const tls = kafka.tlsBrokers.join(',');
    const g = randomName('tls');
    const run = await oncely(
      [
        'run',
        V1,
        '--until',
        'caught-up',
        '--brokers',
        tls,
        '--kafka-ca-file',
        certs.ca,
        '--kafka-cert-file',
        certs.cert,
        '--kafka-key-file',
        certs.key,
      ],
      appEnv(g),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(Object.values(await positions(schema, g))).toEqual([String(PER_PARTITION), String(PER_PARTITION)]);

    const viaEnv = {
      ONCELY_BROKERS: tls,
      ONCELY_KAFKA_CA_FILE: certs.ca,
      ONCELY_KAFKA_CERT_FILE: certs.cert,
      ONCELY_KAFKA_KEY_FILE: certs.key,
    };
    const status = await oncely(['status', '--group', g, '--json'], appEnv(g, viaEnv));
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as Array<{ lag: string }>).map((r) => r.lag)).toEqual(['0', '0']);

    // The system's CAs do not know the test CA.
    const unknownCa = await oncely(['status', '--brokers', tls, '--kafka-ssl'], appEnv(g));
    expect(unknownCa.code, unknownCa.stderr).toBe(2);
    expect(unknownCa.stderr).toMatch(
      /KAFKA_AUTH_FAILED: TLS with 127\.0\.0\.1:\d+ failed: .*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
    );
    // The broker requires a client certificate.
    const noCert = await oncely(['status', '--brokers', tls, '--kafka-ca-file', certs.ca], appEnv(g));
    expect(noCert.code, noCert.stderr).toBe(2);
    expect(noCert.stderr).toMatch(/KAFKA_AUTH_FAILED: TLS with 127\.0\.0\.1:\d+ failed/);
  });
});

describe('Kafka over SASL and TLS with the platformatic reader (ONCELY_READER=platformatic)', () => {
  it('SCRAM-SHA-512 and PLAIN runs and status, mutual TLS; a wrong password or an unknown CA exits 2 naming what failed', async () => {
    const passwordFile = join(dir, 'password-platformatic');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const done = { [`${topic}:0`]: String(PER_PARTITION), [`${topic}:1`]: String(PER_PARTITION) };
    const sasl = kafka.saslBrokers.join(',');
    const scram512 = {
      ONCELY_READER: 'platformatic',
      ONCELY_BROKERS: sasl,
      ONCELY_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      ONCELY_KAFKA_SASL_USERNAME: USER,
      ONCELY_KAFKA_SASL_PASSWORD_FILE: passwordFile,
    };
    const g1 = randomName('plt-scram512');
    const s512 = await oncely(['run', V1, '--until', 'caught-up'], appEnv(g1, scram512));
    expect(s512.code, s512.stderr).toBe(0);
    expect(await positions(schema, g1)).toEqual(done);

    const plain = {
      ONCELY_READER: 'platformatic',
      ONCELY_BROKERS: sasl,
      ONCELY_KAFKA_SASL_MECHANISM: 'plain',
      ONCELY_KAFKA_SASL_USERNAME: USER,
      ONCELY_KAFKA_SASL_PASSWORD: PASSWORD,
    };
    const status = await oncely(['status', '--group', g1, '--json'], appEnv(g1, plain));
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as Array<{ lag: string }>).map((r) => r.lag)).toEqual(['0', '0']);

    const wrong = 'Wr0ng-s3ntinel-pw';
    const bad = await oncely(['status', '--group', g1], appEnv(g1, { ...plain, ONCELY_KAFKA_SASL_PASSWORD: wrong }));
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/KAFKA_AUTH_FAILED: SASL PLAIN authentication of user "alice" at 127\.0\.0\.1:\d+ failed/);

    const tls = kafka.tlsBrokers.join(',');
    const g2 = randomName('plt-tls');
    const viaEnv = {
      ONCELY_READER: 'platformatic',
      ONCELY_BROKERS: tls,
      ONCELY_KAFKA_CA_FILE: certs.ca,
      ONCELY_KAFKA_CERT_FILE: certs.cert,
      ONCELY_KAFKA_KEY_FILE: certs.key,
    };
    const run = await oncely(['run', V1, '--until', 'caught-up'], appEnv(g2, viaEnv));
    expect(run.code, run.stderr).toBe(0);
    expect(await positions(schema, g2)).toEqual(done);
    const unknownCa = await oncely(['status', '--brokers', tls, '--kafka-ssl', '--reader', 'platformatic'], appEnv(g2));
    expect(unknownCa.code, unknownCa.stderr).toBe(2);
    expect(unknownCa.stderr).toMatch(
      /KAFKA_AUTH_FAILED: TLS with 127\.0\.0\.1:\d+ failed: .*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
    );
    for (const r of [s512, status, bad, run, unknownCa]) {
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
      expect(r.stdout + r.stderr).not.toContain(wrong);
    }
  });
});
