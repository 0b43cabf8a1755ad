import { OncelyError, type OncelyErrorOptions } from '../errors.js';

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
