export { classifyError, type ErrorClass, type ErrorSource, type StoreErrorClassifier } from './classify.js';
export { crashLoopError, planSuspect, SuspectGate, type SuspectPlan } from './crash-budget.js';
export { type DeadLetterReason, deadLetterOf, type FailureVerdict, judgeFailure } from './failure-policy.js';
export { type CompiledRetryPolicy, compileRetryPolicy, type RetryPolicy } from './retry-policy.js';
