/**
 * The S3 trigger's handler, free of environment and client construction (see `lambda.ts` for the wiring):
 * schema-parse the event, start what it asks for, and fail the invocation if any run could not be submitted,
 * so Lambda's asynchronous retries deliver it again (already-started runs are skipped on the retry).
 * @module
 */
import { parseS3Event } from './schema.js'
import { jsonLineLog, triggerRuns, type RecordResult, type TriggerDeps } from './trigger.js'

/** Some runs could not be submitted; their statuses say `failed`. */
export class TriggerError extends AggregateError {
  override readonly name = 'TriggerError'
}

export type TriggerHandler = (event: unknown) => Promise<RecordResult[]>

/**
 * @example
 * export const handler = createHandler({ store, submitter: batchSubmitter({ ... }), bucket })
 */
export function createHandler(deps: TriggerDeps): TriggerHandler {
  const log = deps.log ?? jsonLineLog
  return async (event: unknown) => {
    let records: ReturnType<typeof parseS3Event>['Records']
    try {
      records = parseS3Event(event).Records
    } catch (err) {
      const error = (err as Error).message
      log({ level: 'ERROR', message: 'invalid event', timestamp: new Date().toISOString(), error })
      throw err
    }
    const results = await triggerRuns(records, { ...deps, log })
    const failed = results.flatMap((r) => (r.result === 'failed' ? [r] : []))
    if (failed.length > 0) {
      const why = failed.map((f) => f.error.message).join('; ')
      throw new TriggerError(
        failed.map((f) => f.error),
        `${failed.length} of ${results.length} runs could not be submitted: ${why}`
      )
    }
    return results
  }
}
