/**
 * `/metrics`, `/healthz` and `/readyz` over HTTP: a request handler to mount in your own server, and
 * a small server of its own for `oncely run --metrics-port`. Probe answers are JSON with their
 * reasons; 200 when ok, 503 when not.
 *
 * ```ts
 * const metrics = workerMetrics(worker, { registry });
 * const health = workerHealth(worker);
 * const handle = observabilityHandler({ registry: metrics.registry, health });
 * http.createServer((req, res) => { if (!handle(req, res)) { res.statusCode = 404; res.end(); } });
 * ```
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type * as PromClient from 'prom-client';
import { toError } from '../errors.js';
import type { HealthReport, WorkerHealth } from './health.js';

/**
 * node:http is required, not imported: an ESM import of it makes Node 24 load its bundled HTTP
 * client (undici, for fetch and WebSocket) too, about 12 MB of resident memory in every worker,
 * most of which never start this server (test/packaging/footprint.test.ts checks that none of the packages loads it).
 */
const require = createRequire(import.meta.url);

/** What the handler serves: a registry for `/metrics`, probes for `/healthz` and `/readyz`. */
export interface ObservabilityHandlerOptions {
  registry?: Pick<PromClient.Registry, 'metrics' | 'contentType'>;
  health?: WorkerHealth;
}

/** Handles `/metrics`, `/healthz` and `/readyz` (GET or HEAD); returns false for any other path. */
export function observabilityHandler(
  options: ObservabilityHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const json = (res: ServerResponse, r: HealthReport) => {
    res.statusCode = r.ok ? 200 : 503;
    res.setHeader('content-type', 'application/json');
    res.end(`${JSON.stringify({ status: r.ok ? 'ok' : 'unavailable', reasons: r.reasons, checks: r.checks })}\n`);
  };
  const fail = (res: ServerResponse, e: unknown) => {
    res.statusCode = 500;
    res.setHeader('content-type', 'text/plain');
    res.end(`${toError(e).message}\n`);
  };
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (path === '/metrics' && options.registry) {
      const registry = options.registry;
      registry.metrics().then(
        (text) => {
          res.setHeader('content-type', registry.contentType);
          res.end(text);
        },
        (e: unknown) => fail(res, e),
      );
      return true;
    }
    if (path === '/healthz' && options.health) {
      json(res, options.health.live());
      return true;
    }
    if (path === '/readyz' && options.health) {
      options.health.ready().then(
        (r) => json(res, r),
        (e: unknown) => fail(res, e),
      );
      return true;
    }
    return false;
  };
}

/** A running observability server. */
export interface ObservabilityServer {
  readonly server: Server;
  /** `http://host:port`, with the port the OS gave when 0 was asked. */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves {@link observabilityHandler} on `host:port` (404 for other paths). */
export async function serveObservability(
  options: ObservabilityHandlerOptions & { port: number; host?: string },
): Promise<ObservabilityServer> {
  const handle = observabilityHandler(options);
  const { createServer } = require('node:http') as typeof import('node:http');
  const server = createServer((req, res) => {
    if (!handle(req, res)) {
      res.statusCode = 404;
      res.setHeader('content-type', 'text/plain');
      res.end('not found: /metrics, /healthz and /readyz are served here\n');
    }
  });
  const host = options.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
