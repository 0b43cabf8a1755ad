export type { RecordQuery } from './explain.js';
export { OffsetsAdmin } from './offsets-admin.js';
export { describeTarget } from './reset-plan.js';
export type {
  AuditOptions,
  CheckpointEntry,
  CheckpointSummary,
  OffsetSource,
  OffsetsAdminOptions,
  PartitionStatus,
  PointInTimePosition,
  RecordHistory,
  RecordHistoryEvent,
  RecordInKafka,
  ReplayRequest,
  ResetPlan,
  ResetPlanEntry,
  ResetRequest,
  ResetTarget,
  TopicScope,
  WorkerState,
  WorkerStatus,
} from './types.js';
