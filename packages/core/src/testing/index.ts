export type { MemoryLogRecord } from './memory-log.js';
export { MemoryLog } from './memory-log.js';
