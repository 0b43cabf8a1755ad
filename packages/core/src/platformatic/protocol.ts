/**
 * The three requests the platformatic adapter sends over @platformatic/kafka's connections, each an
 * API made with the library's `createAPI` and the library's request writers, answered by core's own
 * decoders (the same ones the kafkajs adapter uses):
 *
 * - Fetch v11, sessionless (session id 0, epoch -1), with `currentLeaderEpoch` per partition; the
 *   answer is decoded by `decodeFetchResponseV11`, record batches left as bytes for
 *   `decodePartitionRecords` (CRC-32C of every batch, read_committed filtering, batch boundaries).
 * - Metadata v7: leaders and leader epochs, by `decodeMetadataResponseV7`.
 * - ListOffsets v4 (with `currentLeaderEpoch` -1): per-partition error codes are returned, not thrown.
 *
 * Why not the library's `Consumer.fetch()`: it decodes record batches itself without checking their
 * CRC (the bytes are gone before we could), decompresses with its own codecs, throws for the whole
 * response when one partition has an error (an OFFSET_OUT_OF_RANGE would fail its neighbours), and
 * keeps incremental fetch sessions (KIP-227) whose answers leave out partitions without news.
 */
import type * as Plt from '@platformatic/kafka';
import type { MetadataResponse } from '../kafkajs/metadata.js';
import { decodeMetadataResponseV7 } from '../kafkajs/metadata.js';
import { decodeFetchResponseV11, type FetchResponse } from '../kafkajs/wire.js';

/** One topic of a Fetch v11 request, the shape FetchLane hands over. */
export interface FetchTopic {
  topic: string;
  partitions: Array<{ partition: number; currentLeaderEpoch: number; fetchOffset: bigint; maxBytes: number }>;
}

/** One partition of a ListOffsets v4 answer. */
export interface ListedOffset {
  partition: number;
  errorCode: number;
  offset: bigint;
}

type Api<Args extends unknown[], R> = Plt.API<Args, R>;

/** The APIs, bound to the loaded library. */
export interface Apis {
  fetch: Api<
    [maxWaitMs: number, minBytes: number, maxBytes: number, isolationLevel: number, topics: FetchTopic[]],
    FetchResponse
  >;
  metadata: Api<[topics: string[]], MetadataResponse>;
  listOffsets: Api<
    [isolationLevel: number, topic: string, partitions: number[], timestamp: bigint],
    { topic: string; partitions: ListedOffset[] }
  >;
}

/** The rest of the payload after the response header, as one Buffer (a view when it came in one chunk). */
const payloadOf = (reader: Plt.Reader): Buffer => reader.buffer.slice(reader.position, reader.length);

export function createApis(plt: typeof Plt): Apis {
  const fetch = plt.createAPI(
    1,
    11,
    (maxWaitMs: number, minBytes: number, maxBytes: number, isolationLevel: number, topics: FetchTopic[]) =>
      plt.fetchV11.createRequest(
        maxWaitMs,
        minBytes,
        maxBytes,
        isolationLevel,
        0, // no fetch session:
        -1, // every request is a full one and every answer lists every partition asked for
        topics.map((t) => ({
          topicId: t.topic, // v11 names topics; the library's writer takes the name in this field
          partitions: t.partitions.map((p) => ({
            partition: p.partition,
            currentLeaderEpoch: p.currentLeaderEpoch,
            fetchOffset: p.fetchOffset,
            lastFetchedEpoch: -1,
            partitionMaxBytes: p.maxBytes,
          })),
        })),
        [],
        '',
      ),
    (_correlationId, _apiKey, _apiVersion, reader) => decodeFetchResponseV11(payloadOf(reader)),
    false,
    false,
  );
  const metadata = plt.createAPI(
    3,
    7,
    (topics: string[]) => plt.metadataV7.createRequest(topics, false),
    (_correlationId, _apiKey, _apiVersion, reader) => decodeMetadataResponseV7(payloadOf(reader)),
    false,
    false,
  );
  const listOffsets = plt.createAPI(
    2,
    4,
    (isolationLevel: number, topic: string, partitions: number[], timestamp: bigint) =>
      plt.listOffsetsV4.createRequest(-1, isolationLevel, [
        { name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, currentLeaderEpoch: -1, timestamp })) },
      ]),
    (_correlationId, _apiKey, _apiVersion, reader) => {
      reader.readInt32(); // throttle time
      const topics = reader.readArray(
        (r) => ({
          topic: r.readString(false),
          partitions: r.readArray(
            (p) => {
              const partition = p.readInt32();
              const errorCode = p.readInt16();
              p.readInt64(); // timestamp
              const offset = p.readInt64();
              p.readInt32(); // leader epoch
              return { partition, errorCode, offset };
            },
            false,
            false,
          ),
        }),
        false,
        false,
      );
      return topics[0] ?? { topic: '', partitions: [] };
    },
    false,
    false,
  );
  return { fetch, metadata, listOffsets } as unknown as Apis;
}
