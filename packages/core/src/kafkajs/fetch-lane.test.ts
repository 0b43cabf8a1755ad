import { afterEach, describe, expect, it, vi } from 'vitest';
import { DRAINING_LANE_MAX_WAIT_MS, FetchLane, type LaneFetch } from './fetch-lane.js';
import type { FetchPartitionResponse, FetchResponse } from './wire.js';

type Topics = Parameters<ConstructorParameters<typeof FetchLane>[0]>[0];

/** A lane whose broker answers each partition with records or without, as `withRecords` says, and records each request's maxWaitMs. */
function lane(withRecords: (partition: number) => boolean) {
  const waits: number[] = [];
  const requests: number[][] = [];
  const l = new FetchLane(async (topics: Topics, maxWaitMs: number): Promise<FetchResponse> => {
    waits.push(maxWaitMs);
    requests.push(topics.flatMap((t) => t.partitions.map((p) => p.partition)));
    return {
      clientSideThrottleTime: 0,
      errorCode: 0,
      topics: topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map(
          (p): FetchPartitionResponse => ({
            partition: p.partition,
            errorCode: 0,
            highWatermark: 10n,
            lastStableOffset: 10n,
            logStartOffset: 0n,
            abortedTransactions: null,
            records: withRecords(p.partition) ? Buffer.alloc(64) : Buffer.alloc(0),
          }),
        ),
      })),
    };
  });
  const fetch = (partition: number) => l.fetch(request(partition));
  return { fetch, waits, requests };
}

function request(partition: number): LaneFetch {
  return {
    topic: 't',
    partition,
    fetchOffset: 0n,
    maxBytes: 1024,
    currentLeaderEpoch: -1,
    maxWaitMs: 500,
    signal: new AbortController().signal,
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('FetchLane', () => {
  it('long-polls as asked while no partition of the lane is draining', async () => {
    const l = lane(() => false);
    await l.fetch(0);
    await l.fetch(1);
    await l.fetch(0);
    expect(l.waits).toEqual([500, 500, 500]);
  });

  it('caps the wait of a request of idle partitions while another partition drains a backlog', async () => {
    const l = lane((p) => p === 0);
    await l.fetch(0); // partition 0 answered with records: draining
    await l.fetch(1); // idle partition 1 alone: must not hold partition 0's next fetch for 500 ms
    await Promise.all([l.fetch(0), l.fetch(1)]); // both in one request: the broker answers at once anyway
    expect(l.requests).toEqual([[0], [1], [0, 1]]);
    expect(l.waits).toEqual([500, DRAINING_LANE_MAX_WAIT_MS, 500]);
  });

  it('long-polls again once the draining partition is caught up or has not drained for a second', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let backlog = true;
    const l = lane((p) => p === 0 && backlog);
    await l.fetch(0);
    await l.fetch(1);
    backlog = false;
    await l.fetch(0); // caught up: an answer without records
    await l.fetch(1);
    backlog = true;
    await l.fetch(0);
    vi.setSystemTime(Date.now() + 1_001);
    await l.fetch(1);
    expect(l.waits).toEqual([500, DRAINING_LANE_MAX_WAIT_MS, 500, 500, 500, 500]);
  });
});
