export {
  type PartitionSelection,
  parsePartitionSelector,
  parseWorkerSplit,
  StaticMembership,
  staticAssignment,
} from './static.js';
export type { Membership, MembershipContext } from './types.js';
