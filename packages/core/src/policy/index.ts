export { classifyError, type ErrorClass, type ErrorSource, type StoreErrorClassifier } from './classify.js';
export { crashBudgetSpent, SuspectGate } from './crash-budget.js';
export { type DeadLetterReason, deadLetterOf, type FailureVerdict, judgeFailure } from './failure-policy.js';
export { type CompiledRetryPolicy, compileRetryPolicy, type RetryPolicy } from './retry-policy.js';
