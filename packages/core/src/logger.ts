/** Log levels, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Structured logger: a message and flat fields. Bring pino/winston by implementing this. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function render(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
}

/** A logfmt-style logger to stderr; `level` defaults to ONCELY_LOG_LEVEL or 'info'. */
export function consoleLogger(
  options: { level?: LogLevel; fields?: Record<string, unknown>; write?: (line: string) => void } = {},
): Logger {
  const level = options.level ?? (process.env.ONCELY_LOG_LEVEL as LogLevel | undefined) ?? 'info';
  const min = order[level] ?? order.info;
  const base = options.fields ?? {};
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = (l: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (order[l] < min) return;
    const all = { ...base, ...fields };
    const rest = Object.entries(all)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${render(v)}`)
      .join(' ');
    write(`${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} ${message}${rest ? ` ${rest}` : ''}`);
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    child: (fields) => consoleLogger({ level, fields: { ...base, ...fields }, write }),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

/** The part of a pino logger (or any logger with pino's call shape) that {@link pinoLogger} uses. */
export interface PinoLike {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): PinoLike;
}

/** Fields as JSON can carry them: bigints as decimal strings, errors as their message. */
function jsonFields(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!fields) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[k] =
      typeof v === 'bigint'
        ? v.toString()
        : v instanceof Error
          ? v.message
          : v !== null && typeof v === 'object'
            ? JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)))
            : v;
  }
  return out;
}

/**
 * oncely's Logger over a pino logger (or anything with pino's `(fields, message)` call shape):
 * one JSON event per line, with pino's levels, redaction and transports.
 *
 * ```ts
 * import pino from 'pino';
 * const worker = createWorker(app, { store, reader, logger: pinoLogger(pino()) });
 * ```
 */
export function pinoLogger(p: PinoLike): Logger {
  return {
    debug: (m, f) => p.debug(jsonFields(f), m),
    info: (m, f) => p.info(jsonFields(f), m),
    warn: (m, f) => p.warn(jsonFields(f), m),
    error: (m, f) => p.error(jsonFields(f), m),
    child: (fields) => pinoLogger(p.child(jsonFields(fields))),
  };
}
