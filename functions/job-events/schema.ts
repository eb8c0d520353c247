/**
 * Zod schema for the EventBridge "Batch Job State Change" event, the fields the job-events handler reads.
 * The rest passes through, so a new field from AWS never breaks it.
 *
 * `detail` is the job as `DescribeJobs` shows it: `container.environment` holds the job definition's
 * variables merged with the submission's overrides (so `RUN_ID` is there), `attempts[]` one entry per attempt.
 * @see https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html
 * @module
 */
import { z } from 'zod'
import { describeIssues } from '../../core/zod-issues.js'

const Container = z.looseObject({
  exitCode: z.number().int().optional(),
  reason: z.string().optional(),
  logStreamName: z.string().optional(),
})

export const BatchJobStateChangeSchema = z.looseObject({
  'detail-type': z.literal('Batch Job State Change'),
  source: z.literal('aws.batch'),
  time: z.string().optional(),
  detail: z.looseObject({
    jobName: z.string(),
    jobId: z.string(),
    jobQueue: z.string().optional(),
    status: z.string(),
    statusReason: z.string().optional(),
    attempts: z
      .array(z.looseObject({ container: Container.optional(), statusReason: z.string().optional() }))
      .default([]),
    container: Container.extend({
      environment: z.array(z.looseObject({ name: z.string(), value: z.string().optional() })).default([]),
    }).optional(),
  }),
})
export type BatchJobStateChange = z.infer<typeof BatchJobStateChangeSchema>

/** The invocation payload is not a Batch Job State Change event. */
export class InvalidJobEventError extends Error {
  override readonly name = 'InvalidJobEventError'
}

export function parseJobEvent(event: unknown): BatchJobStateChange {
  const parsed = BatchJobStateChangeSchema.safeParse(event)
  if (parsed.success) return parsed.data
  const issues = describeIssues(parsed.error, '(event)')
  throw new InvalidJobEventError(`not a Batch Job State Change event: ${issues}`, { cause: parsed.error })
}
