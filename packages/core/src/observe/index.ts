export type { GroupOffsetWriter } from '../kafkajs/group-offsets.js';
export { createOffsetMirror, type OffsetMirror, type OffsetMirrorOptions } from './kafka-offset-mirror.js';
