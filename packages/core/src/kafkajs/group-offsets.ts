import type { ConnectionOptions } from 'node:tls';
import kafkajs, { type Admin, type Mechanism, type SASLOptions } from 'kafkajs';

// kafkajs is CommonJS; its default export carries the runtime values under Node's ESM loader.
const { Kafka, logLevel } = kafkajs;

/** Where {@link createGroupOffsetWriter} connects. */
export interface GroupOffsetWriterOptions {
  brokers: readonly string[];
  clientId: string;
  ssl?: boolean | ConnectionOptions;
  sasl?: SASLOptions | Mechanism;
}

/** Writes committed offsets of a Kafka consumer group (kafkajs `admin.setOffsets`). */
export interface GroupOffsetWriter {
  /** Sets the group's offsets of these partitions of one topic. Connects on first use. */
  setOffsets(groupId: string, topic: string, offsets: ReadonlyMap<number, bigint>): Promise<void>;
  /** Disconnects. */
  close(): Promise<void>;
}

/**
 * A kafkajs admin client that writes group offsets. `setOffsets` works for a group with no
 * members, which a mirror group always is: oncely never joins consumer groups.
 */
export function createGroupOffsetWriter(options: GroupOffsetWriterOptions): GroupOffsetWriter {
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    ssl: options.ssl,
    sasl: options.sasl as SASLOptions | undefined,
    logLevel: logLevel.NOTHING,
  });
  let admin: Admin | undefined;
  let connected: Promise<void> | undefined;
  const connect = () => {
    if (!connected) {
      admin = kafka.admin();
      connected = admin.connect().catch((e: unknown) => {
        connected = undefined;
        throw e;
      });
    }
    return connected;
  };
  return {
    async setOffsets(groupId, topic, offsets) {
      await connect();
      await admin!.setOffsets({
        groupId,
        topic,
        partitions: [...offsets].map(([partition, offset]) => ({ partition, offset: offset.toString() })),
      });
    },
    async close() {
      await admin?.disconnect();
    },
  };
}
