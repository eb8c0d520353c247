/**
 * The predict app through `app.request()`, against a real S3 server (embedded s3rver) holding a real tiny model
 * promoted as the trainer does: every body shape, every error status, and the answers checked against the core
 * Predictor run directly on the same model.
 */
import sharp from 'sharp'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'
import { S3Store } from '../../../core/store/s3-store.js'
import { createApp } from '../../../functions/predict/app.js'
import { ModelSource, type Log } from '../../../functions/predict/model-source.js'
import { corruptImage, makeImages } from '../../support/images.js'
import { useTestS3 } from '../../support/s3-server.js'
import { predictDirectly, promote, saveTinyModel } from './models.js'

const s3 = useTestS3('predict-app')
let store: S3Store
let app: ReturnType<typeof createApp>
let jpeg: Buffer
/** Quiet, except that a failed model load shows why. */
const log = vi.fn<Log>((e) => void (e.level === 'ERROR' && process.stderr.write(`${JSON.stringify(e)}\n`)))

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
  store = new S3Store({ bucket: s3().bucket })
  app = createApp({ models: new ModelSource({ store, refreshSeconds: 0, log }), log })
  jpeg = (await makeImages({ count: 1, size: 48, seed: 7 }))[0]!.bytes
})

const post = (body: RequestInit['body'] | undefined, contentType?: string) => {
  const headers = contentType ? { 'content-type': contentType } : undefined
  return app.request('/predict', { method: 'POST', ...(headers ? { headers } : {}), body })
}

const multipart = (bytes: Uint8Array, field = 'image') => {
  const form = new FormData()
  form.append(field, new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), 'face.jpg')
  return form
}

async function errorOf(res: Response) {
  const body = (await res.json()) as { error: { code: string; message: string; hint?: string } }
  return { status: res.status, ...body.error }
}

describe('predict app before any promotion', () => {
  it('answers 503 no_model with a hint, and says so on /healthz', async () => {
    const res = await post(jpeg, 'image/jpeg')
    const error = await errorOf(res)
    expect(error).toMatchObject({ status: 503, code: 'no_model', hint: expect.stringMatching(/promote/) })
    expect(res.headers.get('retry-after')).toBeTruthy()
    expect((await errorOf(await app.request('/model'))).code).toBe('no_model')
    const health = await app.request('/healthz')
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'ok', model: { loaded: false } })
  })
})

describe('predict app with a promoted model', () => {
  beforeAll(async () => {
    await saveTinyModel(store, 'run-a', 1)
    await promote(store, 'run-a')
  })

  it('predicts from raw JPEG bytes, as the core Predictor does on the same model', async () => {
    const res = await post(jpeg, 'image/jpeg')
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    const direct = await predictDirectly(store, 'run-a', jpeg)
    expect(body).toEqual({
      age: Math.round(direct.age * 10) / 10,
      gender: direct.gender,
      genderProbability: Math.round(direct.genderProbability * 1e4) / 1e4,
      model: {
        runId: 'run-a',
        promotedAt: expect.any(String),
        architecture: 'resnet18-two-heads',
        inputSize: 32,
        createdAt: expect.any(String),
      },
    })
    expect(body['age']).toBeGreaterThan(0)
    expect(body['age']).toBeLessThan(120)
  })

  it.each([
    ['PNG', 'image/png', () => sharp(jpeg).png().toBuffer()],
    ['WebP', 'image/webp', () => sharp(jpeg).webp({ lossless: true }).toBuffer()],
  ])('predicts from raw %s bytes', async (_name, type, encode) => {
    const bytes = await encode()
    const res = await post(bytes, type)
    expect(res.status).toBe(200)
    const direct = await predictDirectly(store, 'run-a', bytes)
    expect(await res.json()).toMatchObject({ age: Math.round(direct.age * 10) / 10, gender: direct.gender })
  })

  it('predicts from a multipart form field "image"', async () => {
    const res = await post(multipart(jpeg))
    expect(res.status).toBe(200)
    const a = (await res.json()) as { age: number; genderProbability: number }
    const b = (await (await post(jpeg, 'image/jpeg')).json()) as typeof a
    expect(a.age).toBe(b.age)
    expect(a.genderProbability).toBe(b.genderProbability)
  })

  it('predicts from JSON base64, plain and as a data: URL', async () => {
    const reference = await (await post(jpeg, 'image/jpeg')).json()
    for (const image of [jpeg.toString('base64'), `data:image/jpeg;base64,${jpeg.toString('base64')}`]) {
      const res = await post(JSON.stringify({ image }), 'application/json; charset=utf-8')
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual(reference)
    }
  })

  it.each([
    ['an unreadable image', () => post(corruptImage(), 'image/jpeg'), 'unreadable_image'],
    ['an empty body', () => post(new Uint8Array(), 'image/jpeg'), 'missing_image'],
    ['no body and no type', () => post(undefined), 'missing_image'],
    ['a multipart body without "image"', () => post(multipart(jpeg, 'photo')), 'missing_image'],
    ['JSON without "image"', () => post('{"picture":"x"}', 'application/json'), 'missing_image'],
    ['malformed JSON', () => post('{"image": ', 'application/json'), 'malformed_json'],
    ['bad base64', () => post(JSON.stringify({ image: 'not*base64!' }), 'application/json'), 'bad_base64'],
    ['base64 of junk', () => post(JSON.stringify({ image: 'aGVsbG8=' }), 'application/json'), 'unreadable_image'],
  ])('answers 400 for %s', async (_name, send, code) => {
    expect(await errorOf(await send())).toMatchObject({ status: 400, code })
  })

  it('answers 415 for text/plain, naming what it accepts', async () => {
    const error = await errorOf(await post('hello', 'text/plain'))
    expect(error).toMatchObject({ status: 415, code: 'unsupported_media_type' })
    expect(error.hint).toMatch(/image\/jpeg.*multipart\/form-data.*application\/json/)
  })

  it('answers 413 when the image is over the limit, in every body shape', async () => {
    const small = createApp({ models: new ModelSource({ store, log }), maxBytes: 1000 })
    expect(jpeg.length).toBeGreaterThan(1000)
    const send = (body: RequestInit['body'], type?: string) =>
      small.request('/predict', { method: 'POST', ...(type ? { headers: { 'content-type': type } } : {}), body })
    // the base64 body is within the JSON body limit (a third over 1000 bytes): the decoded size decides
    const justOver = Buffer.alloc(1001, 1).toString('base64')
    for (const res of [
      await send(jpeg, 'image/jpeg'),
      await send(multipart(jpeg)),
      await send(JSON.stringify({ image: jpeg.toString('base64') }), 'application/json'),
      await send(JSON.stringify({ image: justOver }), 'application/json'),
    ]) {
      expect(await errorOf(res)).toMatchObject({ status: 413, code: 'payload_too_large' })
    }
  })

  it('describes the served model on /model and /healthz', async () => {
    const res = await app.request('/model')
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({
      runId: 'run-a',
      modelPrefix: 'models/run-a/',
      inputSize: 32,
      summary: { testAgeMae: 7.5 },
      meta: { format: 'agegender-tfjs-layers', inputSize: 32, testTimeFlip: true, runId: 'run-a' },
      metrics: { bestEpoch: 3, test: { ageMae: 7.5, genderAccuracy: 0.8 }, baselines: { medianAge: 30 } },
    })
    expect(await (await app.request('/healthz')).json()).toMatchObject({ model: { loaded: true, runId: 'run-a' } })
  })

  it('answers unknown routes with a JSON 404', async () => {
    expect(await errorOf(await app.request('/nope'))).toMatchObject({ status: 404, code: 'not_found' })
  })
})
