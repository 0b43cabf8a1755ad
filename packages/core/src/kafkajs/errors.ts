import { OncelyError, type OncelyErrorOptions, PartitionReadError } from '../errors.js';

/** The topic does not exist on the cluster (or this client may not see it). */
export class TopicNotFoundError extends OncelyError {
  override readonly name = 'TopicNotFoundError';
  constructor(
    readonly topic: string,
    options: OncelyErrorOptions = {},
  ) {
    super(
      'TOPIC_NOT_FOUND',
      `Topic ${JSON.stringify(topic)} does not exist on the Kafka cluster; create it (kafka-topics.sh --create) or fix the topic name.`,
      { ...options, retriable: false },
    );
  }
}

/** A fetched record batch uses a compression codec that no installed package can decompress. */
export class CompressionUnsupportedError extends OncelyError {
  override readonly name = 'CompressionUnsupportedError';
  constructor(
    readonly codec: string,
    hint: string,
    options: OncelyErrorOptions = {},
  ) {
    super('COMPRESSION_UNSUPPORTED', `A fetched record batch is ${codec}-compressed and no ${codec} codec is usable: ${hint}`, {
      ...options,
      retriable: false,
    });
  }
}

/** The broker answered with a non-retriable error, or with bytes this client cannot read. */
export class KafkaProtocolError extends OncelyError {
  override readonly name = 'KafkaProtocolError';
  constructor(message: string, options: OncelyErrorOptions = {}) {
    super('KAFKA_PROTOCOL', message, { ...options, retriable: false });
  }
}

/**
 * A record batch failed its CRC-32C check on every fetch within the reader's retries: the broker
 * serves damaged bytes. Decoding them could hand a handler wrong values (a flipped digit).
 */
export class CorruptRecordBatchError extends PartitionReadError {
  override readonly name = 'CorruptRecordBatchError';
  constructor(
    topic: string,
    partition: number,
    offset: bigint,
    readonly storedCrc: number,
    readonly computedCrc: number,
    /** How many fetches in a row returned it damaged; absent while the reader still fetches again. */
    fetches?: number,
  ) {
    const tp = `${topic}/${partition}`;
    const what = `The record batch at offset ${offset} of ${tp} failed its CRC-32C check (stored ${hex(storedCrc)}, computed ${hex(computedCrc)})`;
    super(
      'CORRUPT_RECORD_BATCH',
      topic,
      partition,
      offset,
      fetches === undefined
        ? `${what}.`
        : `${what} on ${fetches} fetches in a row: the broker serves damaged bytes (a disk or broker fault). ` +
            `A worker stops ${tp} at offset ${offset}; the other partitions go on. Check the leader's log and disk; a replica may ` +
            'hold an intact copy (move leadership to it, then restart the worker). If the batch is lost for good, skip it on purpose: ' +
            `\`oncely offsets reset --group <group> --topic ${topic}:${partition} --to-offset <first offset after it> --execute\` ` +
            "(kafka-dump-log.sh on the leader's segment shows where the next batch starts; the damaged header cannot be trusted).",
    );
  }
}

/** The partition holds a message set in format v0 or v1 (Kafka before 0.11), which oncely does not read. */
export class UnsupportedMessageFormatError extends PartitionReadError {
  override readonly name = 'UnsupportedMessageFormatError';
  constructor(
    topic: string,
    partition: number,
    offset: bigint,
    readonly magic: number,
  ) {
    const tp = `${topic}/${partition}`;
    super(
      'MESSAGE_FORMAT_UNSUPPORTED',
      topic,
      partition,
      offset,
      `${tp} holds a message set in the unsupported format v${magic} at offset ${offset}; oncely reads only record batches ` +
        `of format v2 (Kafka 0.11 and later). A worker stops ${tp} there; the other partitions go on. Rewrite the topic's old ` +
        'data with a current producer (or a MirrorMaker/Connect copy into a new topic), or move the position past it with `oncely offsets reset`.',
    );
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/**
 * The broker refused SASL authentication: wrong credentials, a mechanism it does not enable, or a
 * listener that takes no SASL. A configuration error: retrying cannot help.
 */
export class KafkaAuthenticationError extends OncelyError {
  override readonly name = 'KafkaAuthenticationError';
  constructor(message: string, options: OncelyErrorOptions = {}) {
    super('KAFKA_AUTH_FAILED', message, { ...options, retriable: false });
  }
}
