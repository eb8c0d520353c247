/**
 * The predict HTTP API as a pure Hono app: no AWS, no environment. `lambda.ts` runs it behind a Function URL,
 * `server.ts` on a local port; tests call `app.request()`.
 *
 * ```
 * POST /predict   one or several images (raw image/jpeg|png|webp; multipart files in "image"; JSON
 *                 {"image": base64} or {"images": [base64, ...]}), mode auto|detect|whole (?mode= or a body field)
 *                 → { images: [{ index, name?, width, height, mode, fellBack, faces: [...] } | { index, name?, error }],
 *                     model: { runId, promotedAt, ..., detector, ageInterval } }
 * GET  /model     the served model's meta, promotion and headline metrics (503 before any promotion)
 * GET  /healthz   always 200; says whether a model is loaded (never loads one)
 * GET  /          a page to try it in a browser (page.ts)
 * ```
 * The answer always has the `images` array, one entry per image in request order, even for a single image.
 * An image that is admitted (JPEG, PNG or WebP bytes) but does not decode gets an `error` entry in place and the
 * others are answered; when no image could be answered the request fails with that error.
 *
 * Every error is `{ "error": { "code", "message", "hint"? } }` with its status: 400 bad input (including a bad
 * mode, too many images, or `detect` on a server without a detector), 413 too large, 415 unsupported type
 * (by Content-Type, or by the bytes whatever the Content-Type says), 503 no (loadable) model. Everything about
 * the request is checked before the model is asked for.
 * @module
 */
import { Hono, type MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
import { z } from 'zod'
import type { AgeRange } from '../../core/age-interval.js'
import { FACE_MODES, NoDetectorError, type FaceAnswer, type FaceMode, type ImageAnswer } from '../../core/faces.js'
import { ImageDecodeError, type Box } from '../../core/preprocess.js'
import { ApiError, errorBody, type ErrorBody } from './errors.js'
import {
  bodyKind,
  bodyLimits,
  imageLabel,
  readPredictInput,
  tooLarge,
  type BodyKind,
  type InputImage,
} from './image-input.js'
import {
  jsonLineLog,
  ModelLoadError,
  NoModelError,
  type Log,
  type ModelProvider,
  type ServedModel,
} from './model-source.js'
import { servePage } from './page.js'

/** 5 MiB for all images of a request: a phone photo; a Function URL takes at most 6 MB, and base64 adds a third. */
export const DEFAULT_MAX_BYTES = 5 * 1024 * 1024
/** Images per request: enough for a batch from a script, few enough that one request stays within seconds. */
export const DEFAULT_MAX_IMAGES = 8

export interface PredictAppOptions {
  /** Where the served model comes from (a `ModelSource`). */
  readonly models: ModelProvider
  /** Largest accepted total of image bytes per request, whatever the body shape. @default DEFAULT_MAX_BYTES - 5 MiB */
  readonly maxBytes?: number
  /** Most images per request. @default DEFAULT_MAX_IMAGES - 8 */
  readonly maxImages?: number
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
  /** The face detector's name; null when the server has none (then `auto` answers for the whole image). */
  readonly detector: string | null
  /** The age ranges' calibration; null when the model has none (then every `ageRange` is null). */
  readonly ageInterval: { readonly level: number; readonly method: string } | null
}

/**
 * One face, rounded for the wire: ages and ranges to 0.1 year, probabilities and scores to 1e-4, boxes to whole
 * pixels and to 1e-4 of the image.
 */
export type FaceResult = FaceAnswer

/** One image's answer ({@link ImageAnswer}), or why it could not be answered. */
export type ImageResult =
  | (ImageAnswer & { readonly index: number; readonly name?: string })
  | ({ readonly index: number; readonly name?: string } & ErrorBody)

export interface PredictResponse {
  /** One entry per image, in request order. */
  readonly images: readonly ImageResult[]
  readonly model: ModelInfo
}

/** `?mode=` or the body's `mode` field. */
export const ModeParam = z.enum(FACE_MODES, {
  error: (issue) => `mode must be one of ${FACE_MODES.join(', ')}, got ${JSON.stringify(issue.input)}`,
})

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
  const maxImages = options.maxImages ?? DEFAULT_MAX_IMAGES
  const log = options.log ?? jsonLineLog
  const app = new Hono()

  app.post('/predict', limitBody(maxBytes), async (c) => {
    // A bad ?mode= is refused before the body is read.
    const queryMode = c.req.query('mode')
    if (queryMode !== undefined) parseMode(queryMode)
    // c.req.raw, not a copy taken earlier: bodyLimit may have replaced the request with a buffered one.
    const input = await readPredictInput(c.req.raw, { maxBytes, maxImages })
    const mode = resolveMode(queryMode, input.mode)
    const answer = await models.use(async (m): Promise<PredictResponse> => {
      if (mode === 'detect' && !m.faces.detector) throw modeUnavailable()
      const images: ImageResult[] = []
      for (const image of input.images) images.push(await analyzeOne(m, image, mode, input.images.length))
      const failed = images.filter((r): r is Extract<ImageResult, ErrorBody> => 'error' in r)
      if (failed.length === images.length) {
        const first = failed[0]!.error
        const message =
          images.length === 1
            ? first.message
            : `none of the ${images.length} images could be read: ${failed.map((f) => f.error.message).join('; ')}`
        throw new ApiError(400, first.code, message, first.hint)
      }
      return { images, model: modelInfo(m) }
    })
    return c.json(answer)
  })

  servePage(app)

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
    if (err instanceof NoDetectorError) return c.json(modeUnavailable().toJSON(), 400)
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
  const interval = m.meta.ageInterval
  return {
    runId: m.promotion.runId,
    promotedAt: m.promotion.promotedAt,
    architecture: m.meta.architecture,
    inputSize: m.meta.inputSize,
    createdAt: m.meta.createdAt,
    detector: m.faces.detector?.name ?? null,
    ageInterval: interval ? { level: interval.level, method: interval.method } : null,
  }
}

/** @throws ApiError 400 bad_mode */
function parseMode(value: string): FaceMode {
  const parsed = ModeParam.safeParse(value.trim().toLowerCase())
  if (parsed.success) return parsed.data
  throw new ApiError(400, 'bad_mode', parsed.error.issues[0]?.message ?? 'bad mode', `use ${FACE_MODES.join(', ')}`)
}

/** The query's mode, else the body's, else `auto`; both given must agree. */
function resolveMode(fromQuery: string | undefined, fromBody: string | undefined): FaceMode {
  const query = fromQuery === undefined ? undefined : parseMode(fromQuery)
  const body = fromBody === undefined ? undefined : parseMode(fromBody)
  if (query && body && query !== body) {
    throw new ApiError(400, 'bad_mode', `?mode=${query} and the body's mode "${body}" disagree`, 'give the mode once')
  }
  return query ?? body ?? 'auto'
}

const modeUnavailable = () =>
  new ApiError(
    400,
    'mode_unavailable',
    'mode "detect" needs a face detector, and this server has none loaded',
    'use mode "auto" (answers for the whole image when no face can be found) or "whole"'
  )

/** One image through the face pipeline; a file that does not decode is reported in place, not thrown. */
async function analyzeOne(m: ServedModel, image: InputImage, mode: FaceMode, count: number): Promise<ImageResult> {
  const id = { index: image.index, ...(image.name !== undefined ? { name: image.name } : {}) }
  try {
    const answer = await m.faces.analyze(image.bytes, mode)
    return { ...id, ...answer, faces: answer.faces.map(roundFace) }
  } catch (err) {
    if (!(err instanceof ImageDecodeError)) throw err
    const message = `${imageLabel(image.index, image.name, count)}: ${err.message}`
    return { ...id, ...errorBody('unreadable_image', message, 'send a JPEG, PNG or WebP image') }
  }
}

const round1 = (value: number) => Math.round(value * 10) / 10
const round4 = (value: number) => Math.round(value * 1e4) / 1e4

function roundBox(box: Box, digits: (v: number) => number): Box {
  return { x: digits(box.x), y: digits(box.y), width: digits(box.width), height: digits(box.height) }
}

export function roundFace(face: FaceAnswer): FaceResult {
  const range: AgeRange | null = face.ageRange
    ? { low: round1(face.ageRange.low), high: round1(face.ageRange.high), level: face.ageRange.level }
    : null
  return {
    box: roundBox(face.box, Math.round),
    boxRelative: roundBox(face.boxRelative, round4),
    score: face.score === null ? null : round4(face.score),
    method: face.method,
    age: round1(face.age),
    ageRange: range,
    gender: face.gender,
    genderProbability: round4(face.genderProbability),
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
    (Object.keys(limits) as BodyKind[]).map((kind) => [kind, bodyLimit({ maxSize: limits[kind], onError })])
  ) as Record<BodyKind, MiddlewareHandler>
  return (c, next) => limiters[bodyKind(c.req.header('content-type')) ?? 'raw'](c, next)
}
