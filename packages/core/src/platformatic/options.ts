import { type CompiledReaderOptions, compileReaderOptions, type KafkajsReaderOptions } from '../kafkajs/options.js';
import { connectionSecurity } from './security.js';

/**
 * Options of {@link PlatformaticPartitionReader}: those of the kafkajs reader (same names, same
 * defaults, same checks), so that one set of settings drives either adapter. `ssl` and `sasl` take
 * the kafkajs shapes and are translated: `ssl: true` or Node's `tls.ConnectionOptions`; `sasl` with
 * mechanism `plain`, `scram-sha-256`, `scram-sha-512` (username, password) or `oauthbearer`
 * (`oauthBearerProvider`). kafkajs's `aws` mechanism has no counterpart and is refused.
 */
export type PlatformaticReaderOptions = Omit<KafkajsReaderOptions, 'kafkajsLogLevel'>;

/** Validates the options once (as the kafkajs reader does) and applies the defaults. */
export function compilePlatformaticOptions(options: PlatformaticReaderOptions): CompiledReaderOptions {
  const compiled = compileReaderOptions(options);
  connectionSecurity(compiled); // refuses a SASL mechanism the library has no counterpart for, now
  return compiled;
}
