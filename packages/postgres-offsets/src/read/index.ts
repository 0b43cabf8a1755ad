export { readOffsetLog, readPositions } from './read.js';
export type { OffsetLogEntry, OffsetLogQuery, PartitionPosition } from './types.js';
