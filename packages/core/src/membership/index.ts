export { ClaimKeeper, PartitionCatalog } from './claims.js';
export { ElasticMembership, type ElasticMembershipOptions } from './elastic.js';
export { type AssignmentWorker, assignPartitions, partitionKey } from './rendezvous.js';
export {
  type PartitionSelection,
  parsePartitionSelector,
  parseWorkerSplit,
  StaticMembership,
  type StaticMembershipOptions,
  staticAssignment,
} from './static.js';
export type {
  Membership,
  MembershipContext,
  MembershipHost,
  MembershipStrategy,
  MembershipView,
} from './types.js';
