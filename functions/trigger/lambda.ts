/**
 * AWS Lambda entry for S3 `ObjectCreated` notifications on the dataset bucket.
 *
 * Environment: `STORE_BUCKET`, `JOB_QUEUE_ARN`, `JOB_DEFINITION_ARN` (parsed once at cold start; a missing one
 * fails the cold start naming it). The S3 endpoint and addressing follow `core/store/s3-config.ts`, so the same
 * bundle runs against LocalStack.
 *
 * Logs through Powertools Logger (JSON with the request id and cold start; see `../observability.ts`).
 * @module
 */
import { BatchClient } from '@aws-sdk/client-batch'
import { S3Store } from '../../core/store/s3-store.js'
import { batchSubmitter } from './batch-submitter.js'
import { parseTriggerConfig } from './config.js'
import { createHandler } from './handler.js'
import { instrument, lambdaLogger, logLines } from '../observability.js'

const { bucket, jobQueue, jobDefinition } = parseTriggerConfig(process.env)

const logger = lambdaLogger('agegender-trigger')

export const handler = instrument(
  createHandler({
    store: new S3Store({ bucket }),
    submitter: batchSubmitter({ client: new BatchClient({}), jobQueue, jobDefinition }),
    bucket,
    log: logLines(logger),
  }),
  { logger }
)
