export type { OffsetLogEntry, PartitionPosition } from '../sql/rows.js';

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
