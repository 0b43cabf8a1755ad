/**
 * Kafka connection flags: brokers, TLS and SASL. The SASL password is read only from
 * ONCELY_KAFKA_SASL_PASSWORD or a file: a password on the command line is visible to every user of
 * the machine (ps, /proc) and ends up in shell histories.
 */
import { readFileSync } from 'node:fs';
import {
  ConfigError,
  KafkajsPartitionReader,
  type KafkajsReaderOptions,
  type PartitionReader,
  PlatformaticPartitionReader,
} from '@oncely/core';
import type { Command } from 'commander';
import { type FlagSpec, flags, intFlag } from './flags.js';

/** The Kafka flags of a command that talks to Kafka. */
export interface KafkaFlags {
  brokers?: string;
  kafkaClientId?: string;
  kafkaSsl?: boolean;
  kafkaCaFile?: string;
  kafkaCertFile?: string;
  kafkaKeyFile?: string;
  kafkaSaslMechanism?: string;
  kafkaSaslUsername?: string;
  kafkaSaslPasswordFile?: string;
  kafkaConnectionTimeout?: string;
  kafkaRequestTimeout?: string;
  reader?: string;
}

/** The reader adapters the CLI can read Kafka with (`--reader`). */
export const READERS = ['kafkajs', 'platformatic'] as const;

/** The variable that holds the SASL password (there is no flag for it). */
export const SASL_PASSWORD_ENV = 'ONCELY_KAFKA_SASL_PASSWORD';

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

const refusePassword = (): never => {
  throw new ConfigError(
    `--kafka-sasl-password is not accepted: a password on the command line is visible to every user of the machine. ` +
      `Set ${SASL_PASSWORD_ENV} or pass --kafka-sasl-password-file <path>.`,
  );
};

/** The Kafka flags (brokers, client id, timeouts, TLS, SASL). */
export const KAFKA_FLAGS: readonly FlagSpec[] = [
  {
    flags: '--brokers <list>',
    description: 'Kafka bootstrap brokers, host:port[,…]',
    fallbackEnv: ['KAFKA_BROKERS'],
  },
  {
    flags: '--reader <adapter>',
    description: 'the Kafka reader: kafkajs, or platformatic (needs @platformatic/kafka installed)',
    choices: READERS,
    default: 'kafkajs',
  },
  { flags: '--kafka-client-id <id>', description: 'client id the brokers see (default: oncely-<group> or oncely-cli)' },
  { flags: '--kafka-connection-timeout <ms>', description: 'time to open a connection to a broker (default 3000)' },
  { flags: '--kafka-request-timeout <ms>', description: 'time a broker has to answer a request (default 30000)' },
  { flags: '--kafka-ssl', description: 'connect with TLS (implied by the --kafka-*-file TLS flags)' },
  { flags: '--kafka-ca-file <path>', description: "PEM file of the CA(s) that signed the brokers' certificates" },
  { flags: '--kafka-cert-file <path>', description: 'PEM client certificate, for brokers that require mutual TLS' },
  { flags: '--kafka-key-file <path>', description: 'PEM private key of --kafka-cert-file' },
  {
    flags: '--kafka-sasl-mechanism <mechanism>',
    description: 'SASL authentication',
    choices: SASL_MECHANISMS,
  },
  { flags: '--kafka-sasl-username <name>', description: 'SASL user name' },
  {
    flags: '--kafka-sasl-password-file <path>',
    description: `file holding the SASL password (or set ${SASL_PASSWORD_ENV})`,
  },
  { flags: '--kafka-sasl-password <never>', description: 'refused', env: false, hidden: true, refuse: refusePassword },
];

/** Adds the Kafka flags to a command. */
export function kafkaOptions(cmd: Command): Command {
  return flags(cmd, KAFKA_FLAGS);
}

function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as { code?: string }).code ?? (e as Error).message;
    throw new ConfigError(`${flag} ${path}: cannot read it (${code}).`, { cause: e });
  }
}

/** TLS and SASL settings for kafkajs from the flags and ONCELY_KAFKA_SASL_PASSWORD; checks they fit together. */
export function kafkaSecurity(f: KafkaFlags): Pick<KafkajsReaderOptions, 'ssl' | 'sasl'> {
  if ((f.kafkaCertFile === undefined) !== (f.kafkaKeyFile === undefined)) {
    throw new ConfigError('--kafka-cert-file and --kafka-key-file go together: a client certificate needs its key.');
  }
  const files = f.kafkaCaFile !== undefined || f.kafkaCertFile !== undefined;
  const ssl: KafkajsReaderOptions['ssl'] = files
    ? {
        ...(f.kafkaCaFile !== undefined ? { ca: [readFlagFile('--kafka-ca-file', f.kafkaCaFile)] } : {}),
        ...(f.kafkaCertFile !== undefined
          ? { cert: readFlagFile('--kafka-cert-file', f.kafkaCertFile), key: readFlagFile('--kafka-key-file', f.kafkaKeyFile!) }
          : {}),
      }
    : f.kafkaSsl === true
      ? true
      : undefined;

  const envPassword = process.env[SASL_PASSWORD_ENV] ?? '';
  const hasPassword = envPassword !== '' || f.kafkaSaslPasswordFile !== undefined;
  const mechanism = f.kafkaSaslMechanism;
  if (mechanism === undefined) {
    if (f.kafkaSaslUsername !== undefined || hasPassword) {
      throw new ConfigError(
        `--kafka-sasl-mechanism is missing: a SASL user name or password is set, but no mechanism (${SASL_MECHANISMS.join(', ')}).`,
      );
    }
    return { ssl };
  }
  if (!(SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
    throw new ConfigError(`--kafka-sasl-mechanism must be one of ${SASL_MECHANISMS.join(', ')}; got ${mechanism}.`);
  }
  if (!f.kafkaSaslUsername) throw new ConfigError(`--kafka-sasl-username is required with --kafka-sasl-mechanism ${mechanism}.`);
  if (envPassword !== '' && f.kafkaSaslPasswordFile !== undefined) {
    throw new ConfigError(`Give the SASL password once: ${SASL_PASSWORD_ENV} or --kafka-sasl-password-file, not both.`);
  }
  let password = envPassword;
  if (f.kafkaSaslPasswordFile !== undefined) {
    // One trailing newline is the file's, not the password's (echo secret > file).
    password = readFlagFile('--kafka-sasl-password-file', f.kafkaSaslPasswordFile)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  if (password === '') {
    throw new ConfigError(
      `SASL ${mechanism} needs a password: set ${SASL_PASSWORD_ENV} or pass --kafka-sasl-password-file <path>` +
        `${f.kafkaSaslPasswordFile !== undefined ? ` (${f.kafkaSaslPasswordFile} is empty)` : ''}.`,
    );
  }
  const sasl = { mechanism, username: f.kafkaSaslUsername, password } as KafkajsReaderOptions['sasl'];
  return { ssl, sasl };
}

/** Reader options (without logger) from the Kafka flags; `brokers` must already be resolved. */
export function kafkaReaderOptions(
  f: KafkaFlags,
  brokers: string[],
  defaultClientId: string,
): Omit<KafkajsReaderOptions, 'logger'> & { clientId: string } {
  return {
    brokers,
    clientId: f.kafkaClientId ?? defaultClientId,
    connectionTimeoutMs: intFlag('--kafka-connection-timeout', f.kafkaConnectionTimeout),
    requestTimeoutMs: intFlag('--kafka-request-timeout', f.kafkaRequestTimeout),
    ...kafkaSecurity(f),
  };
}

/** Reader option names as flags, for {@link inFlagTerms}. */
export const READER_FLAG_NAMES: Readonly<Record<string, string>> = {
  brokers: '--brokers',
  clientId: '--kafka-client-id',
  connectionTimeoutMs: '--kafka-connection-timeout',
  requestTimeoutMs: '--kafka-request-timeout',
  ssl: '--kafka-ssl',
  sasl: '--kafka-sasl-mechanism',
  reader: '--reader',
};

/**
 * The reader `--reader` (ONCELY_READER) names, with these options. Both take the same options; the
 * platformatic one loads @platformatic/kafka when it connects (a ConfigError names the install
 * command when it is missing).
 */
export function createReader(f: KafkaFlags, options: KafkajsReaderOptions): PartitionReader {
  const kind = f.reader ?? 'kafkajs';
  if (kind === 'platformatic') return new PlatformaticPartitionReader(options);
  if (kind !== 'kafkajs') throw new ConfigError(`--reader must be one of ${READERS.join(', ')}; got ${kind}.`);
  return new KafkajsPartitionReader(options);
}
