/**
 * AWS Lambda entry for the EventBridge rule on "Batch Job State Change" (status FAILED) of the training queue.
 *
 * Environment: `STORE_BUCKET` (parsed at cold start; missing, the cold start fails naming it).
 * Logs through Powertools Logger (JSON with the request id and cold start; see `../observability.ts`).
 * @module
 */
import { z } from 'zod'
import { S3Store } from '../../core/store/s3-store.js'
import { createJobEventHandler } from './handler.js'
import { instrument, lambdaLogger, logLines } from '../observability.js'

const env = z
  .object({
    STORE_BUCKET: z
      .string({ error: 'required: STORE_BUCKET (the run bucket)' })
      .trim()
      .min(1, 'required: STORE_BUCKET'),
  })
  .parse(process.env)

const logger = lambdaLogger('agegender-job-events')

export const handler = instrument(
  createJobEventHandler({ store: new S3Store({ bucket: env.STORE_BUCKET }), log: logLines(logger) }),
  { logger }
)
