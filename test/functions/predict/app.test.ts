/**
 * The predict app through `app.request()`, against a real S3 server (embedded s3rver) holding real tiny models
 * promoted as the trainer does: every body shape, one and several images, the face modes, format sniffing, every
 * error status, and the answers checked against the core face pipeline run directly on the same model.
 */
import sharp from 'sharp'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'
import { S3Store } from '../../../core/store/s3-store.js'
import { createApp, type PredictResponse } from '../../../functions/predict/app.js'
import { ModelSource, type Log } from '../../../functions/predict/model-source.js'
import { corruptImage, makeImages } from '../../../support/images.js'
import { useTestS3 } from '../../support/s3-server.js'
import { squareDetector, squaresScene } from '../../support/square-detector.js'
import { analyzeDirectly, onTheWire, promote, saveTinyModel, TEST_CALIBRATION } from './models.js'

const s3 = useTestS3('predict-app')
let store: S3Store
let app: ReturnType<typeof createApp>
let jpeg: Buffer
let jpeg2: Buffer
/** Quiet, except that a failed model load shows why. */
const log = vi.fn<Log>((e) => void (e.level === 'ERROR' && process.stderr.write(`${JSON.stringify(e)}\n`)))

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
  store = new S3Store({ bucket: s3().bucket })
  app = createApp({ models: new ModelSource({ store, refreshSeconds: 0, log }), log })
  const [a, b] = await makeImages({ count: 2, size: 48, seed: 7 })
  jpeg = a!.bytes
  jpeg2 = b!.bytes
})

const post = (body: RequestInit['body'] | undefined, contentType?: string, target = app, query = '') => {
  const headers = contentType ? { 'content-type': contentType } : undefined
  return target.request(`/predict${query}`, { method: 'POST', ...(headers ? { headers } : {}), body })
}

const multipart = (
  files: readonly (readonly [string, Uint8Array])[],
  field = 'image',
  extra: Record<string, string> = {}
) => {
  const form = new FormData()
  for (const [name, bytes] of files) form.append(field, new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), name)
  for (const [k, v] of Object.entries(extra)) form.append(k, v)
  return form
}

const json = (body: unknown) => JSON.stringify(body)

async function answerOf(res: Response): Promise<PredictResponse> {
  expect(res.status, await res.clone().text()).toBe(200)
  return (await res.json()) as PredictResponse
}

async function errorOf(res: Response) {
  const body = (await res.json()) as { error: { code: string; message: string; hint?: string } }
  return { status: res.status, ...body.error }
}

/** The API's answer for one image, from the core pipeline run directly. */
async function expectedImage(
  runId: string,
  bytes: Uint8Array,
  mode: 'auto' | 'detect' | 'whole' = 'auto',
  detector = false
) {
  const direct = await analyzeDirectly(store, runId, bytes, mode, detector ? squareDetector : undefined)
  return { ...direct, faces: direct.faces.map(onTheWire) }
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

  it('refuses a non-JPEG/PNG/WebP body with 415 before asking for the model (which would be 503)', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    const source = new ModelSource({ store, refreshSeconds: 0, log })
    const fresh = createApp({ models: source, log })
    expect(await errorOf(await post(svg, 'image/jpeg', fresh))).toMatchObject({
      status: 415,
      code: 'unsupported_media_type',
    })
    expect(source.status().checkedAt).toBeUndefined()
    // the same app asks for the model once the bytes are admitted
    expect((await errorOf(await post(jpeg, 'image/jpeg', fresh))).status).toBe(503)
  })
})

describe('predict app with a promoted model', () => {
  beforeAll(async () => {
    await saveTinyModel(store, 'run-a', 1)
    await promote(store, 'run-a')
  })

  it('answers one image in the images array, as the core face pipeline does on the same model', async () => {
    const body = await answerOf(await post(jpeg, 'image/jpeg'))
    const expected = await expectedImage('run-a', jpeg)
    expect(body).toEqual({
      images: [{ index: 0, ...expected }],
      model: {
        runId: 'run-a',
        promotedAt: expect.any(String),
        architecture: 'resnet18-two-heads',
        inputSize: 32,
        createdAt: expect.any(String),
        detector: null,
        ageInterval: null,
      },
    })
    // without a detector, auto answers for the whole (square) image and says that it fell back
    expect(body.images[0]).toMatchObject({ width: 48, height: 48, mode: 'auto', fellBack: true })
    const [face] = (body.images[0] as { faces: { age: number; method: string; box: object; ageRange: unknown }[] })
      .faces
    expect(face).toMatchObject({ method: 'whole-image', box: { x: 0, y: 0, width: 48, height: 48 }, ageRange: null })
    expect(face!.age).toBeGreaterThan(0)
    expect(face!.age).toBeLessThan(120)
  })

  it.each([
    ['PNG', 'image/png', () => sharp(jpeg).png().toBuffer()],
    ['WebP', 'image/webp', () => sharp(jpeg).webp({ lossless: true }).toBuffer()],
  ])('predicts from raw %s bytes', async (_name, type, encode) => {
    const bytes = await encode()
    const body = await answerOf(await post(bytes, type))
    expect(body.images).toEqual([{ index: 0, ...(await expectedImage('run-a', bytes)) }])
  })

  it('trusts the bytes, not the Content-Type, for admitted formats (a PNG sent as image/jpeg)', async () => {
    const png = await sharp(jpeg).png().toBuffer()
    const body = await answerOf(await post(png, 'image/jpeg'))
    expect(body.images).toEqual([{ index: 0, ...(await expectedImage('run-a', png)) }])
  })

  it('gives the same answer for multipart, JSON base64 and a JSON data: URL', async () => {
    const reference = await answerOf(await post(jpeg, 'image/jpeg'))
    const viaForm = await answerOf(await post(multipart([['face.jpg', jpeg]])))
    expect(viaForm).toEqual({ ...reference, images: [{ ...reference.images[0], name: 'face.jpg' }] })
    for (const image of [jpeg.toString('base64'), `data:image/jpeg;base64,${jpeg.toString('base64')}`]) {
      expect(await answerOf(await post(json({ image }), 'application/json; charset=utf-8'))).toEqual(reference)
    }
  })

  it('answers several images in request order, from multipart files or a JSON array', async () => {
    const one = await expectedImage('run-a', jpeg)
    const two = await expectedImage('run-a', jpeg2)
    expect(one.faces[0]!.age).not.toBe(two.faces[0]!.age) // the order is visible in the answers
    const form = await answerOf(
      await post(
        multipart([
          ['a.jpg', jpeg],
          ['b.jpg', jpeg2],
          ['c.jpg', jpeg],
        ])
      )
    )
    expect(form.images).toEqual([
      { index: 0, name: 'a.jpg', ...one },
      { index: 1, name: 'b.jpg', ...two },
      { index: 2, name: 'c.jpg', ...one },
    ])
    const viaJson = await answerOf(
      await post(json({ images: [jpeg2, jpeg].map((b) => b.toString('base64')) }), 'application/json')
    )
    expect(viaJson.images).toEqual([
      { index: 0, ...two },
      { index: 1, ...one },
    ])
    // the multipart field may also be called "images"
    const plural = await answerOf(await post(multipart([['b.jpg', jpeg2]], 'images')))
    expect(plural.images).toEqual([{ index: 0, name: 'b.jpg', ...two }])
  })

  it('reports an image that does not decode in place, and answers the others', async () => {
    const body = await answerOf(
      await post(
        multipart([
          ['a.jpg', jpeg],
          ['broken.jpg', corruptImage()],
          ['b.jpg', jpeg2],
        ])
      )
    )
    expect(body.images).toHaveLength(3)
    expect(body.images[0]).toMatchObject({ index: 0, name: 'a.jpg', faces: [expect.any(Object)] })
    expect(body.images[1]).toEqual({
      index: 1,
      name: 'broken.jpg',
      error: {
        code: 'unreadable_image',
        message: expect.stringMatching(/^image 2 \("broken\.jpg"\): cannot decode/),
        hint: expect.any(String),
      },
    })
    expect(body.images[2]).toMatchObject({ index: 2, name: 'b.jpg', faces: [expect.any(Object)] })
  })

  it('fails with 400 when no image of several decodes', async () => {
    const error = await errorOf(
      await post(
        multipart([
          ['x.jpg', corruptImage()],
          ['y.jpg', corruptImage()],
        ])
      )
    )
    expect(error).toMatchObject({
      status: 400,
      code: 'unreadable_image',
      message: expect.stringMatching(/none of the 2 images.*x\.jpg.*y\.jpg/s),
    })
  })

  it('takes the mode from ?mode= or the body; whole reads the whole image without falling back', async () => {
    const whole = await expectedImage('run-a', jpeg, 'whole')
    expect(whole).toMatchObject({ mode: 'whole', fellBack: false })
    expect((await answerOf(await post(jpeg, 'image/jpeg', app, '?mode=whole'))).images).toEqual([
      { index: 0, ...whole },
    ])
    expect(
      (await answerOf(await post(json({ image: jpeg.toString('base64'), mode: 'whole' }), 'application/json'))).images
    ).toEqual([{ index: 0, ...whole }])
    const form = await answerOf(await post(multipart([['a.jpg', jpeg]], 'image', { mode: 'whole' })))
    expect(form.images).toEqual([{ index: 0, name: 'a.jpg', ...whole }])
    // the same face, read the same way: only the mode and the fallback flag differ from auto
    const auto = (await answerOf(await post(jpeg, 'image/jpeg'))).images[0]
    expect(auto).toEqual({ index: 0, ...whole, mode: 'auto', fellBack: true })
  })

  it.each([
    [
      'a bad ?mode=',
      () => post(jpeg, 'image/jpeg', app, '?mode=faces'),
      /mode must be one of auto, detect, whole, got "faces"/,
    ],
    [
      'a bad JSON mode',
      () => post(json({ image: jpeg.toString('base64'), mode: 'all' }), 'application/json'),
      /got "all"/,
    ],
    ['a bad multipart mode', () => post(multipart([['a.jpg', jpeg]], 'image', { mode: '' })), /got ""/],
    [
      'a query and body that disagree',
      () => post(json({ image: jpeg.toString('base64'), mode: 'auto' }), 'application/json', app, '?mode=whole'),
      /disagree/,
    ],
  ])('answers 400 bad_mode for %s', async (_name, send, message) => {
    expect(await errorOf(await send())).toMatchObject({
      status: 400,
      code: 'bad_mode',
      message: expect.stringMatching(message),
    })
  })

  it('answers 400 mode_unavailable for detect on a server without a face detector', async () => {
    const error = await errorOf(await post(jpeg, 'image/jpeg', app, '?mode=detect'))
    expect(error).toMatchObject({ status: 400, code: 'mode_unavailable', hint: expect.stringMatching(/auto/) })
  })

  it.each([
    ['an unreadable image', () => post(corruptImage(), 'image/jpeg'), 'unreadable_image'],
    ['an empty body', () => post(new Uint8Array(), 'image/jpeg'), 'missing_image'],
    ['no body and no type', () => post(undefined), 'missing_image'],
    ['a multipart body without "image"', () => post(multipart([['a.jpg', jpeg]], 'photo')), 'missing_image'],
    [
      'a multipart body with an empty second file',
      () =>
        post(
          multipart([
            ['a.jpg', jpeg],
            ['b.jpg', new Uint8Array()],
          ])
        ),
      'missing_image',
    ],
    ['JSON without "image"', () => post('{"picture":"x"}', 'application/json'), 'missing_image'],
    [
      'JSON with both "image" and "images"',
      () => post(json({ image: 'aGk=', images: ['aGk='] }), 'application/json'),
      'malformed_json',
    ],
    [
      'JSON "images" that is not an array of strings',
      () => post(json({ images: [1, 2] }), 'application/json'),
      'malformed_json',
    ],
    ['malformed JSON', () => post('{"image": ', 'application/json'), 'malformed_json'],
    ['bad base64', () => post(json({ image: 'not*base64!' }), 'application/json'), 'bad_base64'],
    [
      'nine images',
      () => post(multipart(Array.from({ length: 9 }, (_, i) => [`${i}.jpg`, jpeg] as const))),
      'too_many_images',
    ],
  ])('answers 400 for %s', async (_name, send, code) => {
    expect(await errorOf(await send())).toMatchObject({ status: 400, code })
  })

  it('answers 415 for text/plain, naming what it accepts', async () => {
    const error = await errorOf(await post('hello', 'text/plain'))
    expect(error).toMatchObject({ status: 415, code: 'unsupported_media_type' })
    expect(error.hint).toMatch(/image\/jpeg.*multipart\/form-data.*application\/json/)
  })

  describe('refuses every other image format with 415, whatever the Content-Type says', () => {
    const formats: [string, () => Promise<Buffer>][] = [
      [
        'SVG',
        async () =>
          Buffer.from(
            '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48"><rect width="48" height="48" fill="red"/></svg>'
          ),
      ],
      ['TIFF', () => sharp(jpeg).tiff().toBuffer()],
      ['AVIF', () => sharp(jpeg).avif({ quality: 50 }).toBuffer()],
      ['GIF', () => sharp(jpeg).gif().toBuffer()],
      ['plain text', async () => Buffer.from('base64 of junk is junk')],
    ]
    it.each(formats)('%s', async (name, make) => {
      const bytes = await make()
      // sharp would decode each of these image formats: the refusal is the API's, not the decoder's
      if (name !== 'plain text') expect((await sharp(bytes).metadata()).width).toBe(48)
      const label = name === 'plain text' ? 'an unknown format' : name
      for (const res of [
        await post(bytes, 'image/jpeg'),
        await post(bytes, 'image/png'),
        await post(multipart([['face.jpg', bytes]])),
        await post(json({ images: [jpeg.toString('base64'), bytes.toString('base64')] }), 'application/json'),
      ]) {
        const error = await errorOf(res)
        expect(error).toMatchObject({
          status: 415,
          code: 'unsupported_media_type',
          message: expect.stringContaining(`is ${label}, not JPEG, PNG or WebP`),
        })
      }
    })
  })

  it('answers 413 when the images are over the limit, in every body shape, one image or several', async () => {
    const small = createApp({ models: new ModelSource({ store, log }), maxBytes: 1000 })
    expect(jpeg.length).toBeGreaterThan(1000)
    const send = (body: RequestInit['body'], type?: string) => post(body, type, small)
    // the base64 body is within the JSON body limit (a third over 1000 bytes): the decoded size decides
    const justOver = Buffer.alloc(1001, 1).toString('base64')
    const halves = [Buffer.alloc(501, 1).toString('base64'), Buffer.alloc(500, 1).toString('base64')]
    for (const res of [
      await send(jpeg, 'image/jpeg'),
      await send(multipart([['a.jpg', jpeg]])),
      await send(json({ image: jpeg.toString('base64') }), 'application/json'),
      await send(json({ image: justOver }), 'application/json'),
      await send(json({ images: halves }), 'application/json'),
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

describe('predict app with a face detector and a calibrated model', () => {
  let withDetector: ReturnType<typeof createApp>
  const boxes = [
    { x: 20, y: 30, width: 40, height: 40 },
    { x: 120, y: 20, width: 60, height: 56 },
  ]
  let scene: Buffer
  let empty: Buffer

  beforeAll(async () => {
    await saveTinyModel(store, 'run-cal', 5, { ageInterval: TEST_CALIBRATION })
    await promote(store, 'run-cal')
    withDetector = createApp({
      models: new ModelSource({ store, refreshSeconds: 0, log, detector: async () => squareDetector }),
      log,
    })
    scene = await squaresScene(200, 100, boxes)
    empty = await squaresScene(200, 100, [])
  })

  it('answers one entry per detected face, with boxes in pixels and fractions, scores and calibrated ranges', async () => {
    const body = await answerOf(await post(scene, 'image/jpeg', withDetector))
    expect(body.model).toMatchObject({
      runId: 'run-cal',
      detector: 'test-white-squares',
      ageInterval: { level: 0.9, method: 'split-conformal' },
    })
    const expected = await expectedImage('run-cal', scene, 'auto', true)
    expect(body.images).toEqual([{ index: 0, ...expected }])
    const image = body.images[0] as typeof expected
    expect(image).toMatchObject({ width: 200, height: 100, mode: 'auto', fellBack: false })
    expect(image.faces).toHaveLength(2)
    for (const face of image.faces) {
      const drawn = boxes.find((b) => Math.abs(b.x - face.box.x) <= 2)!
      expect(drawn, JSON.stringify(face.box)).toBeDefined()
      for (const k of ['x', 'y', 'width', 'height'] as const)
        expect(Math.abs(face.box[k] - drawn[k])).toBeLessThanOrEqual(2)
      expect(face.boxRelative.x).toBeCloseTo(face.box.x / 200, 3)
      expect(face.boxRelative.height).toBeCloseTo(face.box.height / 100, 3)
      expect(face).toMatchObject({ method: 'detector', score: expect.any(Number) })
      expect(face.score).toBeGreaterThan(0.9)
      // the range is the calibration's band around the age, rounded to 0.1 year
      const band = TEST_CALIBRATION.bands.find((b) => face.age >= b.from && (b.to === null || face.age < b.to))!
      expect(face.ageRange!.level).toBe(0.9)
      expect(face.ageRange!.low).toBeCloseTo(Math.max(0, face.age - band.below), 0)
      expect(face.ageRange!.high).toBeCloseTo(face.age + band.above, 0)
      expect(face.ageRange!.high - face.ageRange!.low).toBeGreaterThan(0)
    }
  })

  it('answers an image without faces: detect with an empty list, auto with the whole image, saying it fell back', async () => {
    const detect = await answerOf(await post(empty, 'image/jpeg', withDetector, '?mode=detect'))
    expect(detect.images).toEqual([{ index: 0, width: 200, height: 100, mode: 'detect', fellBack: false, faces: [] }])
    const auto = await answerOf(await post(empty, 'image/jpeg', withDetector))
    expect(auto.images[0]).toMatchObject({
      mode: 'auto',
      fellBack: true,
      faces: [{ method: 'whole-image', score: null }],
    })
  })

  it('mixes images with and without faces in one request', async () => {
    const body = await answerOf(
      await post(
        multipart(
          [
            ['scene.jpg', scene],
            ['empty.jpg', empty],
          ],
          'image',
          { mode: 'detect' }
        ),
        undefined,
        withDetector
      )
    )
    expect(body.images.map((i) => ('faces' in i ? i.faces.length : i.error.code))).toEqual([2, 0])
  })
})

describe('the page at GET /', () => {
  it('serves the HTML, its script and stylesheet, under a strict Content-Security-Policy', async () => {
    const page = await app.request('/')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    const html = await page.text()
    expect(html).toContain('<script type="module" src="page.js"></script>')
    expect(html).not.toMatch(/<script>|\son\w+=/) // no inline script or handler for the CSP to refuse
    const csp = page.headers.get('content-security-policy')!
    for (const directive of [
      "default-src 'none'",
      "script-src 'self'",
      "connect-src 'self'",
      "frame-ancestors 'none'",
      "img-src 'self' blob: data:",
    ]) {
      expect(csp).toContain(directive)
    }
    expect(page.headers.get('permissions-policy')).toMatch(/camera=\(self\)/)
    expect(page.headers.get('x-content-type-options')).toBe('nosniff')
    const script = await app.request('/page.js')
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(await script.text()).toContain("fetch('predict'")
    expect((await app.request('/page.css')).headers.get('content-type')).toBe('text/css; charset=utf-8')
  })
})
