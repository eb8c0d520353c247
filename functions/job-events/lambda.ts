/**
 * AWS Lambda entry for the EventBridge rule on "Batch Job State Change" (status FAILED) of the training queue.
 *
 * Environment: `STORE_BUCKET` (parsed at cold start; missing, the cold start fails naming it).
 * @module
 */
import { z } from 'zod'
import { S3Store } from '../../core/store/s3-store.js'
import { createJobEventHandler } from './handler.js'

const env = z
  .object({
    STORE_BUCKET: z
      .string({ error: 'required: STORE_BUCKET (the run bucket)' })
      .trim()
      .min(1, 'required: STORE_BUCKET'),
  })
  .parse(process.env)

export const handler = createJobEventHandler({ store: new S3Store({ bucket: env.STORE_BUCKET }) })
