import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { adoptableBroker, envLines } from '../scripts/services/index.js';
import { kafkaApiVersions } from '../scripts/services/probe.js';
import { stopOnCleanup } from './support/cleanup.js';
import { brokers, createTopic, kafkaClient, pgPool, randomName } from './support/fixtures.js';
import { killLeft, processesOfRun, RUN_MARKER } from './support/leaks.js';
import { freePort } from './support/ports.js';

// Proves the pinned kafkajs works against the broker the project starts (Kafka 4 removed old
// protocol versions): create, produce, list offsets, offsets by timestamp, read back via a group.
describe('real services', () => {
  it('produces with kafkajs and reads the records back', async () => {
    const topic = await createTopic(2);
    const kafka = kafkaClient();
    const producer = kafka.producer();
    await producer.connect();
    const before = Date.now();
    const values = Array.from({ length: 10 }, (_, i) => `v${i}-${randomUUID()}`);
    await producer.send({ topic, messages: values.map((value, i) => ({ key: `k${i}`, value, partition: i % 2 })) });
    await producer.disconnect();

    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, before - 1000);
    await admin.disconnect();
    expect(offsets.map((o) => Number(o.high)).sort()).toEqual([5, 5]);
    expect(byTime.map((o) => o.offset)).toEqual(['0', '0']);

    const consumer = kafka.consumer({ groupId: randomName('g') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message }) => {
            seen.push(message.value?.toString() ?? '');
            if (seen.length === values.length) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    expect(seen.sort()).toEqual([...values].sort());
  });

  it('writes and reads PostgreSQL', async () => {
    const pool = pgPool();
    const r = await pool.query<{ n: number; v: string }>('select $1::int + 1 as n, version() as v', [41]);
    expect(r.rows[0]?.n).toBe(42);
    expect(r.rows[0]?.v).toMatch(/PostgreSQL/);
  });
});

describe('which services are adopted', () => {
  it('a Kafka broker answers ApiVersions with the APIs a client needs', async () => {
    const [host, port] = brokers()[0]!.split(':');
    const apis = await kafkaApiVersions(host!, Number(port));
    expect(apis).toEqual(expect.arrayContaining([0, 1, 3, 18]));
  });

  it('a port that accepts but does not speak Kafka is not a broker', async () => {
    // One server writes an HTTP answer, one closes at once, one stays silent.
    const behaviours: Array<(s: Socket) => void> = [
      (s) => s.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n'),
      (s) => s.destroy(),
      () => {},
    ];
    for (const behave of behaviours) {
      const sockets: Socket[] = [];
      const server = createServer((s) => {
        sockets.push(s);
        behave(s);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const { port } = server.address() as AddressInfo;
        expect(await kafkaApiVersions('127.0.0.1', port, 500)).toBeUndefined();
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      }
    }
    // Nothing listening at all.
    expect(await kafkaApiVersions('127.0.0.1', await freePort(), 500)).toBeUndefined();
  });

  it('a broker on 127.0.0.1:9092 is considered only when ONCELY_KAFKA_PORT does not choose our own', () => {
    expect(adoptableBroker({})).toEqual({ host: '127.0.0.1', port: 9092 });
    expect(adoptableBroker({ ONCELY_KAFKA_PORT: '39092' })).toBeUndefined();
  });

  it('services env prints export lines a shell evaluates back to the same values', () => {
    const url = `postgres://app:it's$"\`x\\@127.0.0.1:5432/oncely`;
    const lines = envLines({
      kafka: { brokers: ['127.0.0.1:39092'], source: 'local-broker', startedNow: false },
      postgres: { url, source: 'env' },
    });
    const r = spawnSync('sh', ['-c', `${lines}\nprintf '%s\\n%s' "$KAFKA_BROKERS" "$DATABASE_URL"`], {
      encoding: 'utf8',
      env: {},
    });
    expect(r.stdout).toBe(`127.0.0.1:39092\n${url}`);
  });
});

describe('the check for processes the tests leave behind', () => {
  it('finds a process that carries the run marker, and not after it is gone', async () => {
    const runId = randomUUID();
    const child = stopOnCleanup(spawn('sleep', ['30'], { env: { ...process.env, [RUN_MARKER]: runId }, stdio: 'ignore' }));
    await new Promise((r) => child.once('spawn', r));
    expect(processesOfRun(runId).map((p) => p.pid)).toEqual([child.pid]);
    const exited = new Promise((r) => child.once('exit', r));
    killLeft(processesOfRun(runId));
    await exited;
    expect(processesOfRun(runId)).toEqual([]);
  });
});
