import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { ConfigError, consoleLogger } from '@oncely/core';
import { DeadLetters } from '@oncely/postgres-offsets';
import type { Command } from 'commander';
import type { Knex } from 'knex';
import { type ConnectionFlags, ExitCode } from '../config.js';
import { flags as addFlags, intFlag } from '../flags.js';
import type { KafkaFlags } from '../kafka.js';
import { ACTOR_FLAG, connectionOptions, withAdmin } from '../options.js';
import { consoleHandler } from '../ui/console.js';
import { loadApp } from './run.js';

/** node:http is required, not imported: an ESM import of it loads Node's undici too (see core's observe/http.ts). */
const require = createRequire(import.meta.url);

/** Flags of `oncely ui`. */
export interface UiFlags extends ConnectionFlags, KafkaFlags {
  port?: string;
  host?: string;
  app?: string;
  refresh?: string;
  actor?: string;
}

/**
 * `oncely ui`: the operator console until SIGINT/SIGTERM. Writable only with ONCELY_UI_TOKEN (a
 * variable, never a flag: a flag shows in `ps`).
 */
export async function uiCommand(flags: UiFlags, started?: (url: string) => void): Promise<number> {
  const port = intFlag('--port', flags.port) ?? 8080;
  if (port < 0 || port > 65_535) throw new ConfigError(`--port must be a port from 0 to 65535; got ${flags.port}.`);
  const refreshSeconds = intFlag('--refresh', flags.refresh) ?? 5;
  if (refreshSeconds < 0) throw new ConfigError(`--refresh must be 0 (never) or a number of seconds; got ${flags.refresh}.`);
  const token = process.env.ONCELY_UI_TOKEN || undefined;
  if (token !== undefined && token.length < 12) {
    throw new ConfigError('ONCELY_UI_TOKEN must be at least 12 characters (it is the only thing between a reader and a rewind).');
  }
  const app = flags.app ? ((await loadApp(flags.app)) as never as import('@oncely/core').App<Knex.Transaction>) : undefined;
  const logger = consoleLogger({ level: 'info' });
  return withAdmin(flags, { kafka: true }, async (admin, store) => {
    const deadLetters = new DeadLetters({ store, actor: flags.actor });
    const handle = consoleHandler({ admin, deadLetters, token, actor: flags.actor ?? 'operator', app, refreshSeconds });
    const { createServer } = require('node:http') as typeof import('node:http');
    const server = createServer((req, res) => {
      handle(req, res).catch((e: unknown) => {
        logger.error('console request failed', { error: (e as Error).message });
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
    });
    const host = flags.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new ConfigError(`--port ${port} on ${host}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`, {
            cause: e,
          }),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;
    logger.info(`console on ${url} (${token ? 'writable with the token' : 'read-only: set ONCELY_UI_TOKEN to allow changes'})`);
    started?.(url);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return ExitCode.OK;
  });
}

/** Registers `oncely ui`. */
export function registerUi(program: Command, setCode: (code: number) => void): void {
  connectionOptions(
    addFlags(
      program
        .command('ui')
        .description(
          'The operator console in a browser: positions, lag, workers, dead letters, a rewind wizard that shows its plan first',
        ),
      [
        { flags: '--port <port>', description: 'port of the console (0: any free port)', default: '8080' },
        { flags: '--host <host>', description: 'address to listen on (another than 127.0.0.1 exposes it)', default: '127.0.0.1' },
        { flags: '--app <module>', description: 'the app module, to requeue dead letters with its current handler' },
        { flags: '--refresh <seconds>', description: 'refresh interval of the live pages (0: never)', default: '5' },
        { ...ACTOR_FLAG, description: 'who, in admin_audit (as ui:<name>), when the operator types no name (default: operator)' },
      ],
    ),
  ).action(async (flags: UiFlags) => setCode(await uiCommand(flags)));
}
