/** Ports chosen by the OS (listen on port 0), never fixed numbers that another run may hold. */
import { createServer, type Server } from 'node:net';

function listen(port: number): Promise<Server | undefined> {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', () => done(undefined));
    s.listen(port, '127.0.0.1', () => done(s));
  });
}

const close = (s: Server) => new Promise<void>((done) => s.close(() => done()));

/** A port on 127.0.0.1 that was free a moment ago; nothing listens on it until the caller does. */
export async function freePort(): Promise<number> {
  const s = await listen(0);
  if (!s) throw new Error('the OS gave no free port');
  const { port } = s.address() as { port: number };
  await close(s);
  return port;
}

/** A free port whose next one is free too (a Kafka broker's listener and its controller). */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await listen(0);
    if (!first) continue;
    const { port } = first.address() as { port: number };
    const second = port < 65_535 ? await listen(port + 1) : undefined;
    await close(first);
    if (second) {
      await close(second);
      return port;
    }
  }
  throw new Error('no free pair of adjacent ports after 50 tries');
}
