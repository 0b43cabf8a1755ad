export { describeTarget, OffsetsAdmin } from './offsets-admin.js';
export type {
  AuditOptions,
  CheckpointEntry,
  CheckpointSummary,
  OffsetSource,
  OffsetsAdminOptions,
  PartitionStatus,
  PointInTimePosition,
  ReplayRequest,
  ResetPlan,
  ResetPlanEntry,
  ResetRequest,
  ResetTarget,
  TopicScope,
} from './types.js';
