/**
 * The library's TLS and SASL connection options, from the kafkajs-shaped reader options. Kept apart
 * from options.ts: the public types must not name @platformatic/kafka's (an optional peer).
 */
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type * as Plt from '@platformatic/kafka';
import { ConfigError } from '../errors.js';
import type { CompiledReaderOptions } from '../kafkajs/options.js';

const MECHANISMS: Record<string, Plt.SASLMechanismValue> = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
  oauthbearer: 'OAUTHBEARER',
};

/** The library's TLS and SASL connection options from the kafkajs-shaped ones. */
export function connectionSecurity(o: CompiledReaderOptions): Pick<Plt.ConnectionOptions, 'tls' | 'sasl'> {
  const out: Pick<Plt.ConnectionOptions, 'tls' | 'sasl'> = {};
  if (o.ssl === true) out.tls = {};
  else if (o.ssl && typeof o.ssl === 'object') out.tls = o.ssl as TlsOptions;
  const sasl = o.sasl as
    | { mechanism?: unknown; username?: unknown; password?: unknown; oauthBearerProvider?: () => Promise<{ value: string }> }
    | undefined;
  if (sasl) {
    const name = typeof sasl.mechanism === 'string' ? sasl.mechanism.toLowerCase() : '';
    const mechanism = MECHANISMS[name];
    if (!mechanism) {
      throw new ConfigError(
        `Reader option sasl.mechanism ${JSON.stringify(sasl.mechanism)} is not available with the platformatic reader; ` +
          `use one of ${Object.keys(MECHANISMS).join(', ')}, or the kafkajs reader.`,
      );
    }
    if (mechanism === 'OAUTHBEARER') {
      const provider = sasl.oauthBearerProvider;
      if (typeof provider !== 'function') {
        throw new ConfigError('Reader option sasl.oauthBearerProvider must be a function with mechanism oauthbearer.');
      }
      out.sasl = { mechanism, token: async () => (await provider()).value };
    } else {
      out.sasl = { mechanism, username: String(sasl.username ?? ''), password: String(sasl.password ?? '') };
    }
  }
  return out;
}
