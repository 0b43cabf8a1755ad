/**
 * Whether a port speaks Kafka: an ApiVersions request (v0, understood by every broker since 0.10,
 * Kafka 4 included) must come back with our correlation id and a list of APIs that has Produce,
 * Fetch, Metadata and ApiVersions. An open port alone (another service, a process winding down)
 * is not a broker.
 */
import { connect } from 'node:net';

const API_VERSIONS = 18;
const REQUIRED_APIS = [0, 1, 3, API_VERSIONS]; // Produce, Fetch, Metadata, ApiVersions
const UNSUPPORTED_VERSION = 35; // a broker that dropped v0 still answers with its list

/** The API keys the broker at host:port lists, or undefined when it does not answer as Kafka. */
export function kafkaApiVersions(host: string, port: number, timeoutMs = 2000): Promise<number[] | undefined> {
  return new Promise((resolve) => {
    const correlationId = Math.floor(Math.random() * 0x7fffffff);
    const clientId = Buffer.from('oncely-services');
    const body = Buffer.alloc(10 + clientId.length);
    body.writeInt16BE(API_VERSIONS, 0);
    body.writeInt16BE(0, 2); // version
    body.writeInt32BE(correlationId, 4);
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);

    let received = Buffer.alloc(0);
    const socket = connect({ host, port });
    const done = (apis: number[] | undefined) => {
      socket.destroy();
      resolve(apis);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once('error', () => done(undefined));
    socket.once('close', () => done(undefined));
    socket.once('connect', () => socket.write(Buffer.concat([size, body])));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4) return;
      const length = received.readInt32BE(0);
      if (length < 10 || length > 1 << 20) return done(undefined); // not a Kafka response frame
      if (received.length < 4 + length) return;
      done(parseApiVersions(received.subarray(4, 4 + length), correlationId));
    });
  });
}

function parseApiVersions(frame: Buffer, correlationId: number): number[] | undefined {
  if (frame.readInt32BE(0) !== correlationId) return undefined;
  const errorCode = frame.readInt16BE(4);
  if (errorCode !== 0 && errorCode !== UNSUPPORTED_VERSION) return undefined;
  const count = frame.readInt32BE(6);
  if (count < 0 || frame.length < 10 + count * 6) return undefined;
  const apis: number[] = [];
  for (let i = 0; i < count; i++) apis.push(frame.readInt16BE(10 + i * 6));
  return REQUIRED_APIS.every((k) => apis.includes(k)) ? apis : undefined;
}
