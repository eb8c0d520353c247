/**
 * The predict HTTP API as a pure Hono app: no AWS, no environment. `lambda.ts` runs it behind a Function URL,
 * `server.ts` on a local port; tests call `app.request()`.
 *
 * ```
 * POST /predict   image (raw image/jpeg|png|webp, multipart field "image", or JSON {"image": base64})
 *                 → { age, gender, genderProbability, model: { runId, promotedAt, ... } }
 * GET  /model     the served model's meta, promotion and headline metrics (503 before any promotion)
 * GET  /healthz   always 200; says whether a model is loaded (never loads one)
 * ```
 * Every error is `{ "error": { "code", "message", "hint"? } }` with its status: 400 bad input, 413 too large,
 * 415 unsupported type, 503 no (loadable) model.
 * @module
 */
import { Hono, type MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
import { ImageDecodeError } from '../../core/preprocess.js'
import { ApiError, errorBody } from './errors.js'
import { bodyKind, bodyLimits, readImage, tooLarge, type BodyKind } from './image-input.js'
import {
  jsonLineLog,
  ModelLoadError,
  NoModelError,
  type Log,
  type ModelProvider,
  type ServedModel,
} from './model-source.js'

/** 5 MiB: a phone photo; a Function URL takes at most 6 MB of request, and base64 adds a third. */
export const DEFAULT_MAX_BYTES = 5 * 1024 * 1024

export interface PredictAppOptions {
  /** Where the served model comes from (a `ModelSource`). */
  readonly models: ModelProvider
  /** Largest accepted image in bytes, whatever the body shape. @default DEFAULT_MAX_BYTES - 5 MiB */
  readonly maxBytes?: number
  /** @default - JSON lines on stdout */
  readonly log?: Log
}

/** What the response says about the model that answered. */
export interface ModelInfo {
  readonly runId: string
  readonly promotedAt: string
  readonly architecture: string
  readonly inputSize: number
  readonly createdAt: string
}

export interface PredictResponse {
  /** Years, rounded to 0.1. */
  readonly age: number
  readonly gender: 'male' | 'female'
  /** Probability that the face is female, rounded to 1e-4. */
  readonly genderProbability: number
  readonly model: ModelInfo
}

/** A few seconds: long enough for a promotion or a retry, short enough that clients come back soon. */
const RETRY_AFTER_SECONDS = '30'

/**
 * @example
 * const app = createApp({ models: new ModelSource({ store }) })
 * const headers = { 'content-type': 'image/jpeg' }
 * const res = await app.request('/predict', { method: 'POST', headers, body: jpeg })
 */
export function createApp(options: PredictAppOptions): Hono {
  const { models } = options
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
  const log = options.log ?? jsonLineLog
  const app = new Hono()

  app.post('/predict', limitBody(maxBytes), async (c) => {
    // c.req.raw, not a copy taken earlier: bodyLimit may have replaced the request with a buffered one.
    const image = await readImage(c.req.raw, maxBytes)
    const answer = await models.use(async (m) => {
      const [result] = await m.predictor.predictImages([image])
      if (!result) throw new Error('the predictor returned no result')
      return {
        age: Math.round(result.age * 10) / 10,
        gender: result.gender,
        genderProbability: Math.round(result.genderProbability * 1e4) / 1e4,
        model: modelInfo(m),
      } satisfies PredictResponse
    })
    return c.json(answer)
  })

  app.get('/model', async (c) => {
    const body = await models.use(async (m) => ({
      ...modelInfo(m),
      modelPrefix: m.promotion.modelPrefix,
      loadedAt: m.loadedAt,
      loadSeconds: Math.round(m.loadSeconds * 1000) / 1000,
      ...(m.promotion.summary ? { summary: m.promotion.summary } : {}),
      meta: m.meta,
      ...(m.metrics ? { metrics: m.metrics } : {}),
    }))
    return c.json(body)
  })

  app.get('/healthz', (c) => c.json({ status: 'ok', model: models.status() }))

  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404))

  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(err.toJSON(), err.status)
    if (err instanceof ImageDecodeError) {
      return c.json(errorBody('unreadable_image', err.message, 'send a JPEG, PNG or WebP image'), 400)
    }
    if (err instanceof NoModelError) {
      c.header('Retry-After', RETRY_AFTER_SECONDS)
      const hint = 'train a model and promote it (a passing training run writes models/latest.json); then retry'
      return c.json(errorBody('no_model', err.message, hint), 503)
    }
    if (err instanceof ModelLoadError) {
      c.header('Retry-After', RETRY_AFTER_SECONDS)
      const hint = 'check the promoted model files; the load is retried'
      return c.json(errorBody('model_unavailable', err.message, hint), 503)
    }
    if (err instanceof HTTPException) {
      const code = err.status >= 500 ? 'internal_error' : 'malformed_body'
      return c.json(errorBody(code, err.message || 'bad request'), err.status)
    }
    log({ level: 'ERROR', message: 'unhandled error', path: c.req.path, error: err.message, stack: err.stack })
    return c.json(errorBody('internal_error', 'internal error'), 500)
  })

  return app
}

function modelInfo(m: ServedModel): ModelInfo {
  return {
    runId: m.promotion.runId,
    promotedAt: m.promotion.promotedAt,
    architecture: m.meta.architecture,
    inputSize: m.meta.inputSize,
    createdAt: m.meta.createdAt,
  }
}

/**
 * One `bodyLimit` per body shape (a base64 JSON body may be a third larger than the image it carries),
 * each answering 413 in the API's error format. Unknown types get the raw limit; they are refused with 415.
 */
function limitBody(maxBytes: number): MiddlewareHandler {
  const limits = bodyLimits(maxBytes)
  const onError = () => {
    throw tooLarge(maxBytes)
  }
  const limiters = Object.fromEntries(
    (Object.keys(limits) as BodyKind[]).map((kind) => [kind, bodyLimit({ maxSize: limits[kind], onError })]),
  ) as Record<BodyKind, MiddlewareHandler>
  return (c, next) => limiters[bodyKind(c.req.header('content-type')) ?? 'raw'](c, next)
}
