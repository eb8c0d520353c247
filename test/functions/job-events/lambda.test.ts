/**
 * The job-events Lambda as deployed: its entry built from the environment, real Batch Job State Change event
 * JSON (test/fixtures/events/batch), run statuses in a real S3 server (embedded s3rver), a Lambda context object
 * per invocation, and the Powertools log lines read back from stdout and stderr.
 */
import { readFileSync } from 'node:fs'
import type { Context } from 'aws-lambda'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { RunStatus, runKeys } from '../../../core/runs.js'
import { getJson, putJson } from '../../../core/store/object-store.js'
import { S3Store } from '../../../core/store/s3-store.js'
import type { JobEventResult } from '../../../functions/job-events/handler.js'
import { captureOutput, fakeContext, stubLambdaRuntimeEnv, type CapturedOutput } from '../../support/lambda.js'
import { useTestS3 } from '../../support/s3-server.js'

const BUCKET = 'agegender-datasets-123456789012'
const RUN = 'UTK-faces-100-cropped-5d1c3b7a90'
const FUNCTION = 'agegender-job-events'
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../fixtures/events/batch/${name}.json`, import.meta.url), 'utf8')) as Record<
    string,
    unknown
  >

useTestS3(BUCKET)
let lambdaHandler: (event: unknown, context: Context) => Promise<JobEventResult>
let store: S3Store
let out: CapturedOutput
let context: Context
/** One invocation, with its own request id (kept in `context`). */
const handler = (event: unknown) => {
  context = fakeContext(FUNCTION)
  return lambdaHandler(event, context)
}

beforeAll(async () => {
  vi.stubEnv('STORE_BUCKET', BUCKET)
  vi.stubEnv('POWERTOOLS_SERVICE_NAME', FUNCTION)
  stubLambdaRuntimeEnv(FUNCTION)
  ;({ handler: lambdaHandler } = (await import('../../../functions/job-events/lambda.js')) as {
    handler: typeof lambdaHandler
  })
  store = new S3Store({ bucket: BUCKET })
})
beforeEach(() => {
  out = captureOutput()
})
afterEach(() => out.restore())

const statusKey = runKeys(RUN).status
const status = async () => (await getJson(store, statusKey, RunStatus))!
const given = (fields: Partial<RunStatus>) =>
  putJson(store, statusKey, {
    runId: RUN,
    dataset: { key: 'datasets/UTK faces 100%+cropped.zip' },
    jobId: '4c7599ae-0a82-49aa-ba5a-4727fcce14a8',
    createdAt: '2026-11-20T09:14:04.000Z',
    updatedAt: '2026-11-20T09:20:00.000Z',
    state: 'running',
    ...fields,
  } satisfies RunStatus)

describe('job-events Lambda', () => {
  it('marks a run killed for memory failed, with the reason, exit code and attempts', async () => {
    await given({ state: 'running', epoch: 3, epochs: 30 })

    const result = await handler(fixture('job-failed-oom'))

    expect(result).toMatchObject({ result: 'recorded', runId: RUN })
    expect(await status()).toMatchObject({
      state: 'failed',
      exitCode: 137,
      attempts: 1,
      epoch: 3,
      jobId: '4c7599ae-0a82-49aa-ba5a-4727fcce14a8',
      reason:
        'Batch job 4c7599ae-0a82-49aa-ba5a-4727fcce14a8 failed: Essential container in task exited; ' +
        'container: OutOfMemoryError: Container killed due to memory usage; exit code 137; 1 attempt',
    })
    // the first invocation of this file is the container's cold start
    expect(out.logs()).toEqual([
      expect.objectContaining({
        level: 'WARN',
        message: 'run failed',
        runId: RUN,
        service: FUNCTION,
        function_request_id: context.awsRequestId,
        cold_start: true,
      }),
    ])
  })

  it('closes a run whose last Spot attempt was reclaimed (it was left running with an interruption note)', async () => {
    await given({
      state: 'running',
      reason: 'interrupted (stopped by SIGTERM): stopped after step 900; a retried attempt resumes',
    })

    await handler(fixture('job-failed-spot-reclaimed'))

    const s = await status()
    expect(s).toMatchObject({ state: 'failed', attempts: 3 })
    expect(s.exitCode).toBeUndefined()
    expect(s.reason).toMatch(
      /^Batch job .* failed: Host EC2 \(instance i-0f3e5a7b9c1d2e4f6\) terminated\.; 3 attempts$/
    )
  })

  it('closes a queued run whose job was cancelled while stuck RUNNABLE', async () => {
    await given({ state: 'queued' })

    await handler(fixture('job-cancelled-runnable'))

    const s = await status()
    expect(s.state).toBe('failed')
    expect(s.reason).toMatch(/INSUFFICIENT_INSTANCE_CAPACITY.*; never started$/)
  })

  it('keeps the reason a job recorded itself, adding the exit code', async () => {
    await given({ state: 'failed', reason: 'no usable images in the dataset' })

    await handler(fixture('job-failed-oom'))

    expect(await status()).toMatchObject({ state: 'failed', reason: 'no usable images in the dataset', exitCode: 137 })
  })

  it('never overwrites a succeeded run, and ignores events other than FAILED', async () => {
    await given({ state: 'succeeded', promoted: true })

    expect(await handler(fixture('job-failed-oom'))).toMatchObject({
      result: 'skipped',
      reason: 'the run already succeeded',
    })
    expect(await handler(fixture('job-succeeded'))).toMatchObject({ result: 'skipped' })
    expect(await status()).toMatchObject({ state: 'succeeded', promoted: true })
    expect(out.logs().at(-1)).toMatchObject({
      level: 'INFO',
      message: 'event skipped',
      function_request_id: context.awsRequestId,
      cold_start: false,
    })
  })

  it('writes a failed status even when the run has none yet', async () => {
    await store.delete(statusKey)

    await handler(fixture('job-failed-oom'))

    expect(await status()).toMatchObject({
      state: 'failed',
      dataset: { key: 'datasets/UTK faces 100%+cropped.zip' },
      exitCode: 137,
    })
  })

  it('rejects an event that is not a Batch Job State Change', async () => {
    await expect(handler({ 'detail-type': 'Object Created', source: 'aws.s3', detail: {} })).rejects.toThrow(
      /not a Batch Job State Change event/
    )
  })
})
