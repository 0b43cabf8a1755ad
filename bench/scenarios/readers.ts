/** The Kafka readers an oncely scenario can fetch with, by the name an OncelyConfig gives (config.ts). */
import { KafkajsPartitionReader, type Logger, type PartitionReader, PlatformaticPartitionReader } from '@oncely/core';
import type { ReaderName } from '../config.js';

export function makeReader(name: ReaderName, brokers: string[], logger: Logger): PartitionReader {
  switch (name) {
    case 'kafkajs':
      return new KafkajsPartitionReader({ brokers, logger });
    case 'platformatic':
      return new PlatformaticPartitionReader({ brokers, logger });
  }
}
