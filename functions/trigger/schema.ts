/**
 * Zod schemas for the S3 event notifications that invoke the trigger, after Powertools' `schemas/s3.ts`.
 * Only the fields the trigger reads are strict; the rest pass through, so a new field from AWS never breaks us.
 *
 * @example
 * // one record of a real notification (keys are URL-encoded, space → '+')
 * { "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
 *   "s3": { "bucket": { "name": "my-bucket" },
 *           "object": { "key": "datasets/UTK+faces.zip", "size": 1024, "eTag": "d41d…",
 *                       "sequencer": "0062E99A88DC407460" } } }
 * @see https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
 * @module
 */
import { z } from 'zod'
import { describeIssues } from '../../core/zod-issues.js'

export const S3EventRecordSchema = z.looseObject({
  eventVersion: z.string(),
  eventSource: z.literal('aws:s3'),
  awsRegion: z.string().optional(),
  eventTime: z.string().optional(),
  eventName: z.string().min(1),
  s3: z.looseObject({
    bucket: z.looseObject({ name: z.string().min(1), arn: z.string().optional() }),
    object: z.looseObject({
      key: z.string().min(1),
      size: z.number().int().nonnegative().optional(),
      eTag: z.string().optional(),
      versionId: z.string().optional(),
      sequencer: z.string().optional(),
    }),
  }),
})
export type S3EventRecordInput = z.infer<typeof S3EventRecordSchema>

export const S3EventSchema = z.object({ Records: z.array(S3EventRecordSchema) })
export type S3EventInput = z.infer<typeof S3EventSchema>

/** The invocation payload is not an S3 event notification. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError'
}

/** Parses an invocation payload, or throws an `InvalidEventError` listing what is wrong and where. */
export function parseS3Event(event: unknown): S3EventInput {
  const parsed = S3EventSchema.safeParse(event)
  if (parsed.success) return parsed.data
  const issues = describeIssues(parsed.error, '(event)')
  throw new InvalidEventError(`not an S3 event notification: ${issues}`, { cause: parsed.error })
}
