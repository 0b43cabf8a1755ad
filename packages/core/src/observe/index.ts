export { createOffsetMirror, type OffsetMirror, type OffsetMirrorOptions } from './kafka-offset-mirror.js';
