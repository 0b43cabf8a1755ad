/**
 * Who leads each partition, and in which leader epoch: oncely's own metadata cache.
 *
 * Why not kafkajs's: it requests Metadata v6 at most, which carries no leader epoch. Without the
 * epoch a fetch cannot tell a demoted leader from the current one: Fetch v11 lets a follower
 * answer, so after a preferred-leader election a reader kept fetching from the old leader until
 * its metadata aged out. With `currentLeaderEpoch` in every fetch, a broker that is no longer the
 * leader of that epoch answers FENCED_LEADER_EPOCH, and the reader reloads the partition's leader.
 */
import { BufReader } from './wire.js';

/** One partition as a Metadata v7 response describes it. */
export interface PartitionLeadership {
  partition: number;
  errorCode: number;
  /** The leader's node id; -1 while the partition has none (its replicas are all down). */
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
}

/** One topic of a Metadata v7 response. */
export interface TopicLeadership {
  errorCode: number;
  topic: string;
  partitions: PartitionLeadership[];
}

/** A decoded Metadata v7 response. */
export interface MetadataResponse {
  brokers: Array<{ nodeId: number; host: string; port: number }>;
  controllerId: number;
  topics: TopicLeadership[];
}

const ints = (r: BufReader) => r.array(() => r.int32()) ?? [];

/** Decodes a Metadata v7 response body (after the correlation id). */
export function decodeMetadataResponseV7(payload: Buffer): MetadataResponse {
  const r = new BufReader(payload);
  r.int32(); // throttle time
  const brokers =
    r.array(() => {
      const nodeId = r.int32();
      const host = r.string();
      const port = r.int32();
      r.string(); // rack
      return { nodeId, host, port };
    }) ?? [];
  r.string(); // cluster id
  const controllerId = r.int32();
  const topics =
    r.array(() => {
      const errorCode = r.int16();
      const topic = r.string();
      r.int8(); // is_internal
      const partitions =
        r.array(() => {
          const errorCode = r.int16();
          const partition = r.int32();
          const leader = r.int32();
          const leaderEpoch = r.int32();
          const replicas = ints(r);
          const isr = ints(r);
          ints(r); // offline replicas
          return { partition, errorCode, leader, leaderEpoch, replicas, isr };
        }) ?? [];
      return { errorCode, topic, partitions };
    }) ?? [];
  return { brokers, controllerId, topics };
}

interface Entry {
  partitions: Map<number, PartitionLeadership>;
  /** When the request that produced this entry was sent. */
  loadedAt: number;
}

/**
 * Leaders per topic, loaded on first use and reloaded when older than `maxAgeMs` or when a caller
 * saw a sign that it is stale (`ensure(topics, since)`). Concurrent callers share one load per topic.
 */
export class LeaderCache {
  readonly #entries = new Map<string, Entry>();
  readonly #loading = new Map<string, { startedAt: number; done: Promise<Map<string, Error>> }>();

  constructor(
    /** Loads metadata of these topics; per-topic errors are in the response, not thrown. */
    private readonly load: (topics: string[]) => Promise<MetadataResponse>,
    /** Turns a topic-level error code (-1: the topic is missing from the response) into an error. */
    private readonly topicError: (topic: string, errorCode: number) => Error,
    private readonly maxAgeMs: number,
  ) {}

  /** The cached leadership of a partition, if its topic was loaded. */
  get(topic: string, partition: number): PartitionLeadership | undefined {
    return this.#entries.get(topic)?.partitions.get(partition);
  }

  /** The cached partition ids of a topic, sorted. */
  partitions(topic: string): number[] | undefined {
    const e = this.#entries.get(topic);
    return e ? [...e.partitions.keys()].sort((a, b) => a - b) : undefined;
  }

  /**
   * Makes sure every topic's entry is younger than maxAgeMs and, with `since`, was requested at or
   * after `since` (the time a caller saw a stale answer). Throws the error the broker gave for one
   * of these topics (e.g. TopicNotFound), or the load's own error.
   */
  async ensure(topics: string[], since?: number): Promise<void> {
    const now = Date.now();
    const waits: Array<{ topics: string[]; done: Promise<Map<string, Error>> }> = [];
    const stale: string[] = [];
    for (const topic of new Set(topics)) {
      const e = this.#entries.get(topic);
      if (e && now - e.loadedAt < this.maxAgeMs && (since === undefined || e.loadedAt >= since)) continue;
      const loading = this.#loading.get(topic);
      if (loading && (since === undefined || loading.startedAt >= since)) waits.push({ topics: [topic], done: loading.done });
      else stale.push(topic);
    }
    if (stale.length > 0) waits.push({ topics: stale, done: this.#load(stale) });
    for (const w of waits) {
      const errors = await w.done;
      for (const topic of w.topics) {
        const error = errors.get(topic);
        if (error) throw error;
      }
    }
  }

  #load(topics: string[]): Promise<Map<string, Error>> {
    const startedAt = Date.now();
    const done = this.load(topics)
      .then((md) => {
        const errors = new Map<string, Error>();
        for (const topic of topics) {
          const t = md.topics.find((x) => x.topic === topic);
          if (t?.errorCode !== 0) {
            this.#entries.delete(topic);
            errors.set(topic, this.topicError(topic, t?.errorCode ?? -1));
          } else {
            this.#entries.set(topic, { loadedAt: startedAt, partitions: new Map(t.partitions.map((p) => [p.partition, p])) });
          }
        }
        return errors;
      })
      .finally(() => {
        for (const topic of topics) if (this.#loading.get(topic)?.done === done) this.#loading.delete(topic);
      });
    done.catch(() => {}); // every caller observes the error through its own await
    for (const topic of topics) this.#loading.set(topic, { startedAt, done });
    return done;
  }
}
