/** A row of the partitions table: one group/topic/partition's position and owner. */
export interface PartitionPosition {
  group: string;
  topic: string;
  partition: number;
  /** The next offset to fetch. */
  nextOffset: bigint;
  epoch: bigint;
  /** The worker holding the claim, or null when released or never claimed. */
  owner: string | null;
  leaseExpiresAt: Date | null;
  /** Whether the lease has expired by the database's clock (true when there is none). */
  leaseExpired: boolean;
  /** The highest next_offset ever committed (null before the first commit). */
  highestCommitted: bigint | null;
  updatedAt: Date;
}

/** A row of the offset log: one committed batch. */
export interface OffsetLogEntry {
  id: bigint;
  group: string;
  topic: string;
  partition: number;
  fromOffset: bigint;
  toOffset: bigint;
  recordCount: number;
  epoch: bigint;
  workerId: string;
  committedAt: Date;
}

/** Which offset-log rows to read, newest first. */
export interface OffsetLogQuery {
  group: string;
  topic?: string;
  partition?: number;
  /** Only batches committed at or before this time (point-in-time lookups). */
  before?: Date;
  /** At most this many rows. Default 100. */
  limit?: number;
}
