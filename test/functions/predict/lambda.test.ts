/**
 * The Lambda entry as deployed: environment read at import (a cold start), the wasm backend loaded from
 * `WASM_PATH`, the model from a real S3 server (embedded s3rver), BlazeFace from the installed weights, and literal Function URL events (payload
 * format 2.0; binary bodies base64-encoded with `isBase64Encoded: true`) from test/fixtures/events/function-url,
 * each with a Lambda context object. What Powertools prints (JSON logs, EMF metrics) is read back from stdout and
 * stderr.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import type { LambdaEvent } from 'hono/aws-lambda'
import type { Context } from 'aws-lambda'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { loadFaceDetector, type BlazeFaceDetector } from '../../../core/face-detector.js'
import { S3Store } from '../../../core/store/s3-store.js'
import {
  captureOutput,
  fakeContext,
  stubLambdaRuntimeEnv,
  type CapturedOutput,
  type EmfDocument,
} from '../../support/lambda.js'
import { useTestS3 } from '../../support/s3-server.js'
import { analyzeDirectly, onTheWire, promote, saveTinyModel } from './models.js'

const BUCKET = 'agegender-models'
const REFRESH_SECONDS = 1
const FUNCTION = 'agegender-predict'

useTestS3(BUCKET)
let handler: typeof import('../../../functions/predict/lambda.js').handler
let store: S3Store
/** The reference's own detector: the Lambda loads its copy from the same installed weights. */
let detector: BlazeFaceDetector
let out: CapturedOutput
/** What the import (the init phase) logged. */
let startup: Record<string, unknown>[]
let context: Context

/** Function URLs send API Gateway payload format 2.0. */
type FunctionUrlEvent = Extract<LambdaEvent, { rawPath: string }>

/** A fresh copy of a fixture, safe to change. */
const fixture = (name: string): FunctionUrlEvent => {
  const file = new URL(`../../fixtures/events/function-url/${name}.json`, import.meta.url)
  return structuredClone(JSON.parse(readFileSync(file, 'utf8')) as FunctionUrlEvent)
}

/** One invocation, with its own request id (kept in `context`). */
function invokeRaw(event: FunctionUrlEvent) {
  context = fakeContext(FUNCTION, { memoryLimitInMB: '2048' })
  return handler(event, context)
}

async function invoke(name: string) {
  const result = await invokeRaw(fixture(name))
  expect(result.isBase64Encoded).toBe(false)
  expect(result.headers?.['content-type']).toMatch(/^application\/json/)
  return { statusCode: result.statusCode, body: JSON.parse(result.body) as Record<string, unknown> }
}

/** The image inside the JPEG fixture, for the reference prediction. */
const fixtureImage = () => Buffer.from(fixture('predict-jpeg').body!, 'base64')

beforeAll(async () => {
  vi.stubEnv('STORE_BUCKET', BUCKET)
  vi.stubEnv('MODEL_REFRESH_SECONDS', String(REFRESH_SECONDS))
  // Where infra copies the binaries is /var/task/wasm/; here, the installed package's folder.
  vi.stubEnv('WASM_PATH', `${dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))}/`)
  vi.stubEnv('POWERTOOLS_SERVICE_NAME', FUNCTION)
  stubLambdaRuntimeEnv(FUNCTION)
  out = captureOutput()
  // lambda.ts reads its environment at import, as at a cold start: import it once the server is up.
  ;({ handler } = await import('../../../functions/predict/lambda.js'))
  startup = out.logs()
  store = new S3Store({ bucket: BUCKET })
  detector = await loadFaceDetector()
})
beforeEach(() => out.clear())
afterAll(() => {
  out.restore()
  detector.dispose()
})

/** The metric names and units of every EMF document printed, with the namespace and dimension sets. */
const emfMetrics = (docs: EmfDocument[]) =>
  docs.flatMap((d) =>
    d._aws.CloudWatchMetrics.flatMap((m) =>
      m.Metrics.map((metric) => ({ ...metric, namespace: m.Namespace, dimensions: m.Dimensions, doc: d }))
    )
  )

const Latency = { Name: 'PredictLatency', Unit: 'Milliseconds' }

describe('predict Lambda behind a Function URL', () => {
  it('answers 503 no_model before anything is promoted, and healthz says so', async () => {
    const res = await invoke('predict-jpeg')
    expect(res).toMatchObject({ statusCode: 503, body: { error: { code: 'no_model', hint: expect.any(String) } } })
    // the file's first invocation is the cold start: Powertools' ColdStart metric, then this request's latency,
    // both in the AgeGender namespace
    const metrics = emfMetrics(out.emf())
    expect(metrics).toEqual([
      expect.objectContaining({
        Name: 'ColdStart',
        Unit: 'Count',
        namespace: 'AgeGender',
        dimensions: [['service', 'function_name']],
      }),
      expect.objectContaining({ ...Latency, namespace: 'AgeGender', dimensions: [['service']] }),
    ])
    expect(metrics[0]!.doc).toMatchObject({ ColdStart: 1, service: FUNCTION, function_name: FUNCTION })
    expect(metrics[1]!.doc).toMatchObject({ PredictLatency: expect.any(Number), statusCode: '503', service: FUNCTION })
    expect(metrics[1]!.doc['PredictLatency']).toBeGreaterThan(0)

    out.clear()
    const health = await invoke('healthz')
    expect(health).toMatchObject({ statusCode: 200, body: { status: 'ok', model: { loaded: false } } })
    // not a prediction: nothing measured, nothing flushed
    expect(out.emf()).toEqual([])
  })

  it('logged its start in the init phase as a Powertools JSON line', () => {
    expect(startup).toEqual([
      expect.objectContaining({
        level: 'INFO',
        message: 'predict function started',
        service: FUNCTION,
        backend: expect.stringMatching(/wasm/),
        refreshSeconds: REFRESH_SECONDS,
        timestamp: expect.any(String),
      }),
    ])
    expect(startup[0]).not.toHaveProperty('function_request_id')
  })

  it('predicts from a base64-encoded JPEG body exactly as the core face pipeline (with BlazeFace) does', async () => {
    await saveTinyModel(store, 'run-a', 1)
    await promote(store, 'run-a')
    const direct = await analyzeDirectly(store, 'run-a', fixtureImage(), 'auto', detector)
    out.clear()
    const res = await invoke('predict-jpeg')
    expect(res).toEqual({
      statusCode: 200,
      body: {
        images: [{ index: 0, ...direct, faces: direct.faces.map(onTheWire) }],
        model: expect.objectContaining({ runId: 'run-a', inputSize: 32, detector: detector.name }),
      },
    })
    // the model source's lines go through Powertools, with this invocation's request id
    expect(out.logs()).toContainEqual(
      expect.objectContaining({
        level: 'INFO',
        message: 'model loaded',
        runId: 'run-a',
        service: FUNCTION,
        function_request_id: context.awsRequestId,
        cold_start: false,
      })
    )
    // one EMF document for the invocation: the model load and the request's latency
    const [doc, ...more] = out.emf()
    expect(more).toEqual([])
    expect(doc!._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: 'AgeGender',
        Dimensions: [['service']],
        Metrics: expect.arrayContaining([{ Name: 'ModelLoadTime', Unit: 'Milliseconds' }, Latency]),
      },
    ])
    expect(doc).toMatchObject({ statusCode: '200', ModelLoadTime: expect.any(Number) })
    expect(doc!['ModelLoadTime']).toBeGreaterThan(0)
  })

  it('serves the page at GET /, with its Content-Security-Policy', async () => {
    const event = fixture('healthz')
    event.rawPath = '/'
    event.requestContext.http.path = '/'
    const result = await invokeRaw(event)
    expect(result.statusCode).toBe(200)
    expect(result.headers?.['content-type']).toBe('text/html; charset=utf-8')
    expect(result.headers?.['content-security-policy']).toContain("default-src 'none'")
    expect(result.body).toContain('<canvas id="canvas">')
  })

  it('gives the same answer for the multipart and JSON data: URL shapes of the same image', async () => {
    const reference = (await invoke('predict-jpeg')).body as { images: object[] }
    const withName = { ...reference, images: [{ ...reference.images[0], name: 'face.jpg' }] }
    expect(await invoke('predict-multipart')).toEqual({ statusCode: 200, body: withName })
    expect(await invoke('predict-json')).toEqual({ statusCode: 200, body: reference })
  })

  it.each([
    ['predict-corrupt', 400, 'unreadable_image'],
    ['predict-empty', 400, 'missing_image'],
    ['predict-text', 415, 'unsupported_media_type'],
  ])('answers %s with %i %s', async (name, statusCode, code) => {
    expect(await invoke(name)).toMatchObject({ statusCode, body: { error: { code } } })
  })

  it('describes the model on /model and /healthz', async () => {
    const model = await invoke('model')
    expect(model).toMatchObject({ statusCode: 200, body: { runId: 'run-a', meta: { inputSize: 32 } } })
    const health = await invoke('healthz')
    expect(health).toMatchObject({ statusCode: 200, body: { model: { loaded: true, runId: 'run-a' } } })
  })

  it('serves a newly promoted model once MODEL_REFRESH_SECONDS have passed', async () => {
    await saveTinyModel(store, 'run-b', 2)
    await promote(store, 'run-b')
    await new Promise((resolve) => setTimeout(resolve, REFRESH_SECONDS * 1000 + 100))
    out.clear()
    const res = await invoke('predict-jpeg')
    expect(res.body['model']).toMatchObject({ runId: 'run-b' })
    expect(emfMetrics(out.emf()).map((m) => m.Name)).toEqual(
      expect.arrayContaining(['ModelLoadTime', 'PredictLatency'])
    )
    const direct = await analyzeDirectly(store, 'run-b', fixtureImage(), 'auto', detector)
    expect(res.body['images']).toEqual([{ index: 0, ...direct, faces: direct.faces.map(onTheWire) }])
  })
})
