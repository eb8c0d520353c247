/**
 * The trigger end to end, as deployed: a real archive uploaded to a real S3 server (embedded s3rver), the event
 * that server emitted wrapped as the Lambda event, the Lambda entry built from its environment, and only AWS
 * Batch faked (aws-sdk-client-mock: no Batch emulator exists). Each invocation gets a Lambda context object;
 * the JSON log lines are read back from stdout and stderr, where Powertools Logger writes them.
 */
import { BatchClient, SubmitJobCommand, type SubmitJobCommandInput } from '@aws-sdk/client-batch'
import type { Context, S3Event, S3EventRecord } from 'aws-lambda'
import { mockClient } from 'aws-sdk-client-mock'
import { buffer } from 'node:stream/consumers'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import yazl from 'yazl'
import { RunStatus, runIdFor, runKeys } from '../../../core/runs.js'
import { getJson } from '../../../core/store/object-store.js'
import { S3Store } from '../../../core/store/s3-store.js'
import type { TriggerHandler } from '../../../functions/trigger/handler.js'
import { captureOutput, fakeContext, stubLambdaRuntimeEnv, type CapturedOutput } from '../../support/lambda.js'
import { useTestS3 } from '../../support/s3-server.js'

const BUCKET = 'agegender-datasets'
const QUEUE = 'arn:aws:batch:us-east-1:123456789012:job-queue/trainer'
const DEFINITION = 'arn:aws:batch:us-east-1:123456789012:job-definition/trainer:7'
const FUNCTION = 'agegender-trigger'

const s3 = useTestS3(BUCKET)
const batch = mockClient(BatchClient)
let lambdaHandler: (event: unknown, context: Context) => ReturnType<TriggerHandler>
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
  vi.stubEnv('JOB_QUEUE_ARN', QUEUE)
  vi.stubEnv('JOB_DEFINITION_ARN', DEFINITION)
  vi.stubEnv('POWERTOOLS_SERVICE_NAME', FUNCTION)
  stubLambdaRuntimeEnv(FUNCTION)
  // lambda.ts reads its environment at import, as at a cold start: import it once the server is up.
  ;({ handler: lambdaHandler } = (await import('../../../functions/trigger/lambda.js')) as {
    handler: typeof lambdaHandler
  })
  store = new S3Store({ bucket: BUCKET })
})

beforeEach(() => {
  batch.reset()
  batch.on(SubmitJobCommand).callsFake(acceptJob)
  out = captureOutput()
})

afterEach(() => {
  out.restore()
})

afterAll(() => {
  batch.restore()
})

const acceptJob = (input: SubmitJobCommandInput) => ({ jobId: `job-for-${input.jobName}`, jobName: input.jobName })

/** A small but real zip, shaped like a UTKFace upload. */
async function datasetArchive(): Promise<Buffer> {
  const zip = new yazl.ZipFile()
  zip.addBuffer(Buffer.from('not really a jpeg 1'), 'UTKFace/25_0_0_20170116174525125.jpg.chip.jpg')
  zip.addBuffer(Buffer.from('not really a jpeg 2'), 'UTKFace/61_1_3_20170109150557335.jpg.chip.jpg')
  zip.end()
  return buffer(zip.outputStream)
}

/** Uploads `body` and returns the Lambda event built from the record the S3 server emitted for it. */
async function upload(key: string, body: Buffer | string): Promise<S3Event> {
  await store.put(key, body)
  const record: S3EventRecord = s3().lastEventFor(key)
  return { Records: [record] }
}

const submitted = () => batch.commandCalls(SubmitJobCommand).map((c) => c.args[0].input)
const loggedLines = () => out.logs()

describe('trigger Lambda', () => {
  it('submits a training job for an uploaded dataset and records the run as queued', async () => {
    // Prepare: a key with a space and a plus, which the event carries URL-encoded
    const key = 'datasets/UTK faces+v1.zip'
    const archive = await datasetArchive()
    const event = await upload(key, archive)
    expect(event.Records[0]!.s3.object.key).toBe('datasets/UTK+faces%2Bv1.zip')

    // Act
    const results = await handler(event)

    // Assess: one SubmitJob with the queue, definition, a valid name and the run's inputs
    const etag = event.Records[0]!.s3.object.eTag
    const runId = runIdFor(key, etag)
    expect(submitted()).toEqual([
      {
        jobName: `train-${runId}`,
        jobQueue: QUEUE,
        jobDefinition: DEFINITION,
        containerOverrides: {
          environment: [
            { name: 'STORE_BUCKET', value: BUCKET },
            { name: 'DATASET_KEY', value: key },
            { name: 'DATASET_VERSION', value: etag },
            { name: 'DATASET_ETAG', value: etag },
            { name: 'RUN_ID', value: runId },
          ],
        },
      },
    ])
    expect(submitted()[0]!.jobName).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/)
    // the key the job receives names the uploaded object
    expect(Buffer.from((await store.get(key))!)).toEqual(archive)
    // Assess: status.json in the bucket
    const status = await getJson(store, runKeys(runId).status, RunStatus)
    expect(status).toMatchObject({ runId, state: 'queued', jobId: `job-for-train-${runId}`, dataset: { key, etag } })
    expect(results).toEqual([{ result: 'submitted', bucket: BUCKET, key, runId, jobId: `job-for-train-${runId}` }])
    // Assess: one JSON log line for the record, from Powertools, with the invocation's context (the first
    // invocation of this file is the container's cold start)
    expect(loggedLines()).toEqual([
      expect.objectContaining({
        level: 'INFO',
        message: 'run submitted',
        key,
        runId,
        service: FUNCTION,
        function_request_id: context.awsRequestId,
        function_name: FUNCTION,
        cold_start: true,
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      }),
    ])
  })

  it('submits once when the same event is delivered twice', async () => {
    const event = await upload('datasets/twice.zip', await datasetArchive())

    await handler(event)
    const second = await handler(structuredClone(event))

    expect(submitted()).toHaveLength(1)
    expect(second).toEqual([expect.objectContaining({ result: 'skipped', reason: 'run already exists (queued)' })])
    // warm invocations: no cold start, and each line carries its own invocation's request id
    const lines = loggedLines()
    expect(lines).toHaveLength(2)
    expect(lines[1]).toMatchObject({
      message: 'record skipped',
      cold_start: false,
      function_request_id: context.awsRequestId,
    })
    expect(lines[0]!['function_request_id']).not.toBe(lines[1]!['function_request_id'])
  })

  it('submits once when deliveries of one event race each other (If-None-Match claim on S3)', async () => {
    const event = await upload('datasets/race.ZIP', await datasetArchive())
    // a SubmitJob that takes a while, so the other deliveries arrive while the first is still submitting
    batch.on(SubmitJobCommand).callsFake(async (input: SubmitJobCommandInput) => {
      await new Promise((r) => setTimeout(r, 200))
      return acceptJob(input)
    })

    const results = await Promise.all([1, 2, 3].map(() => handler(structuredClone(event))))

    expect(submitted()).toHaveLength(1)
    expect(
      results
        .flat()
        .map((r) => r.result)
        .sort()
    ).toEqual(['skipped', 'skipped', 'submitted'])
    const runId = results.flat().find((r) => r.result === 'submitted')!.runId!
    expect(await getJson(store, runKeys(runId).status, RunStatus)).toMatchObject({
      state: 'queued',
      jobId: `job-for-train-${runId}`,
    })
  })

  it('ignores objects that are not datasets, including the runs it writes itself', async () => {
    const readme = await upload('datasets/readme.txt', 'how to upload')
    const status = await upload('runs/x/status.json', '{}')

    const results = await handler({ Records: [...readme.Records, ...status.Records] })

    expect(submitted()).toEqual([])
    expect(results).toEqual([
      expect.objectContaining({
        result: 'skipped',
        key: 'datasets/readme.txt',
        reason: expect.stringMatching(/not a dataset key/),
      }),
      expect.objectContaining({
        result: 'skipped',
        key: 'runs/x/status.json',
        reason: expect.stringMatching(/not a dataset key/),
      }),
    ])
    expect(loggedLines()).toHaveLength(2)
    expect(await store.list('runs/x/')).toHaveLength(1)
  })

  it('records a failed submission with the reason and fails the invocation; a retry submits', async () => {
    // Prepare
    const key = 'datasets/throttled.tar.gz'
    const event = await upload(key, await datasetArchive())
    const runId = runIdFor(key, event.Records[0]!.s3.object.eTag)
    batch
      .on(SubmitJobCommand)
      .rejectsOnce(Object.assign(new Error('Too Many Requests'), { name: 'ClientException' }))
      .callsFake(acceptJob)

    // Act + Assess: the failure
    await expect(handler(event)).rejects.toThrow(
      /1 of 1 runs could not be submitted: could not start run .*Too Many Requests/
    )
    expect(await getJson(store, runKeys(runId).status, RunStatus)).toMatchObject({
      state: 'failed',
      reason: 'job submission failed: ClientException: Too Many Requests',
    })
    expect(loggedLines()).toEqual([
      expect.objectContaining({ level: 'ERROR', runId, error: expect.stringMatching(/Too Many Requests/) }),
    ])

    // Act + Assess: Lambda's retry of the same event
    await handler(event)
    expect(submitted()).toHaveLength(2)
    expect(await getJson(store, runKeys(runId).status, RunStatus)).toMatchObject({
      state: 'queued',
      jobId: `job-for-train-${runId}`,
    })
  })

  it('rejects a malformed event with a clear error and submits nothing', async () => {
    await expect(handler({ Records: [{ eventSource: 'aws:s3' }] })).rejects.toThrow(
      /not an S3 event notification: Records\.0\.eventVersion: .*Records\.0\.s3/
    )
    await expect(handler({ detail: {} })).rejects.toThrow(/Records/)
    expect(submitted()).toEqual([])
    expect(loggedLines()[0]).toMatchObject({ level: 'ERROR', message: 'invalid event' })
  })
})
