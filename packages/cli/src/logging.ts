/**
 * The CLI's logger: one JSON event per line through pino (`--log-format json`), or the
 * human-readable `time LEVEL message key=value` lines (`--log-format logfmt`). `auto`, the default,
 * is JSON when stderr is not a terminal (a container, a service manager, a pipe) and logfmt on one.
 * Every line goes to stderr; stdout stays for results (`--json`).
 */
import { ConfigError, consoleLogger, type Logger, type LogLevel, pinoLogger } from '@oncely/core';
import { pino } from 'pino';

/** `--log-format`. */
export type LogFormat = 'auto' | 'json' | 'logfmt';

export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'logfmt'];

/**
 * Field names whose values are never printed, whatever logged them (pino's redaction; oncely's own
 * messages already mask passwords in URLs).
 */
const REDACT = ['password', 'sslpassword', 'saslPassword', '*.password', 'sasl.password', 'connectionString', 'databaseUrl'];

/** The logger of a CLI command. */
export function cliLogger(options: { level?: LogLevel; format?: string; fields?: Record<string, unknown> } = {}): Logger {
  const format = options.format ?? 'auto';
  if (!LOG_FORMATS.includes(format as LogFormat)) {
    throw new ConfigError(`--log-format must be one of ${LOG_FORMATS.join(', ')}; got ${format}.`);
  }
  const level = options.level ?? (process.env.ONCELY_LOG_LEVEL as LogLevel | undefined) ?? 'info';
  const json = format === 'json' || (format === 'auto' && !process.stderr.isTTY);
  if (!json) return consoleLogger({ level, fields: options.fields });
  const p = pino(
    {
      level,
      base: { pid: process.pid, ...options.fields },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    // Synchronous: the last lines before an exit are never lost.
    pino.destination({ fd: 2, sync: true }),
  );
  return pinoLogger(p);
}
