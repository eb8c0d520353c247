/**
 * The trigger's reusable parts, for the local runner: plan and submit runs from S3 notification records with
 * any `JobSubmitter`. Importing this has no side effects (unlike `lambda.ts`, which reads the environment).
 * @module
 */
export { plan, decodeEventKey, jobNameFor } from './plan.js'
export type { RunRequest, PlannedRecord, PlanOptions } from './plan.js'
export { submitRun, runEnvironment, SubmitError } from './submit.js'
export type { JobSubmitter, SubmitDeps, SubmitOutcome } from './submit.js'
export { triggerRuns, jsonLineLog, type TriggerDeps, type RecordResult } from './trigger.js'
export { createHandler, TriggerError, type TriggerHandler } from './handler.js'
export { batchSubmitter, type BatchSubmitterProps } from './batch-submitter.js'
export { parseTriggerConfig, ConfigError, type TriggerConfig } from './config.js'
export { parseS3Event, S3EventSchema, S3EventRecordSchema, InvalidEventError } from './schema.js'
export type { S3EventInput, S3EventRecordInput } from './schema.js'
