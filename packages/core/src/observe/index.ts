export type { GroupOffsetWriter } from '../kafkajs/group-offsets.js';
export { type HealthReport, type WorkerHealth, type WorkerHealthOptions, workerHealth } from './health.js';
export {
  type ObservabilityHandlerOptions,
  type ObservabilityServer,
  observabilityHandler,
  serveObservability,
} from './http.js';
export { createOffsetMirror, type OffsetMirror, type OffsetMirrorOptions } from './kafka-offset-mirror.js';
export { errorCodeLabel, type WorkerMetrics, type WorkerMetricsOptions, workerMetrics } from './metrics.js';
