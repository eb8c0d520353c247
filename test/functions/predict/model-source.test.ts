/**
 * ModelSource against a real S3 server: promotion swaps after the refresh interval (measured on an injected
 * clock), concurrent requests share one load, a failed reload keeps the old model, and a swapped-out model is
 * disposed only once no request uses it.
 */
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'
import type { ObjectStore } from '../../../core/store/object-store.js'
import { S3Store } from '../../../core/store/s3-store.js'
import { createApp } from '../../../functions/predict/app.js'
import { ModelLoadError, ModelSource, NoModelError, type Log } from '../../../functions/predict/model-source.js'
import type { FaceDetector } from '../../../core/faces.js'
import { makeImages } from '../../../support/images.js'
import { squareDetector } from '../../support/square-detector.js'
import { useTestS3 } from '../../support/s3-server.js'
import { analyzeDirectly, promote, saveTinyModel } from './models.js'

const s3 = useTestS3('predict-models')
let s3Store: S3Store
let jpeg: Buffer

/** The S3 store, counting the model.json reads (one per model load). */
function countingStore() {
  const reads: string[] = []
  const store: ObjectStore = {
    location: s3Store.location,
    get: (key) => {
      reads.push(key)
      return s3Store.get(key)
    },
    getStream: (key) => s3Store.getStream(key),
    getEntry: (key) => s3Store.getEntry(key),
    put: (key, body, options) => s3Store.put(key, body, options),
    list: (prefix) => s3Store.list(prefix),
    delete: (key) => s3Store.delete(key),
  }
  return { store, loads: () => reads.filter((k) => k.endsWith('/model.json')) }
}

/** A source on a hand-moved clock: `advance(s)` lets `s` seconds pass. */
function sourceWithClock(store: ObjectStore, refreshSeconds = 60) {
  let now = 1_000_000
  const log = vi.fn<Log>()
  const source = new ModelSource({ store, refreshSeconds, log, now: () => now })
  return {
    source,
    log,
    advance: (seconds: number) => {
      now += seconds * 1000
    },
  }
}

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
  s3Store = new S3Store({ bucket: s3().bucket })
  jpeg = (await makeImages({ count: 1, size: 48, seed: 3 }))[0]!.bytes
  await saveTinyModel(s3Store, 'run-1', 1)
  await saveTinyModel(s3Store, 'run-2', 2)
})

beforeEach(async () => {
  await s3Store.delete('models/latest.json')
})

describe('ModelSource', () => {
  it('throws NoModelError until a model is promoted, then serves it without caching the absence', async () => {
    const { source } = sourceWithClock(s3Store)
    await expect(source.current()).rejects.toBeInstanceOf(NoModelError)
    await promote(s3Store, 'run-1')
    expect((await source.current()).promotion.runId).toBe('run-1')
  })

  it('shares one load between concurrent requests', async () => {
    await promote(s3Store, 'run-1')
    const { store, loads } = countingStore()
    const { source } = sourceWithClock(store)
    const served = await Promise.all([source.current(), source.current(), source.current()])
    expect(new Set(served.map((m) => m.predictor))).toHaveLength(1)
    expect(loads()).toEqual(['models/run-1/model.json'])
  })

  it('swaps to a newly promoted model after the refresh interval, and disposes the old one', async () => {
    await promote(s3Store, 'run-1')
    const { source, advance } = sourceWithClock(s3Store, 60)
    const first = await source.current()
    const dispose = vi.spyOn(first.predictor.model, 'dispose')
    await promote(s3Store, 'run-2')
    advance(59)
    expect((await source.current()).promotion.runId).toBe('run-1')
    advance(2)
    const second = await source.current()
    expect(second.promotion.runId).toBe('run-2')
    expect(dispose).toHaveBeenCalledOnce()
    expect(source.status()).toMatchObject({ loaded: true, runId: 'run-2' })
  })

  it('keeps a swapped-out model alive until the request using it is done', async () => {
    await promote(s3Store, 'run-1')
    const { source, advance } = sourceWithClock(s3Store, 1)
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let dispose: ReturnType<typeof vi.spyOn> | undefined
    const inFlight = source.use(async (m) => {
      dispose = vi.spyOn(m.predictor.model, 'dispose')
      await held
      return m.predictor.predictImages([jpeg])
    })
    // the first load (download + warm-up) may take seconds on a busy machine: wait for it, not for 1 s
    await vi.waitFor(() => expect(dispose).toBeDefined(), { timeout: 60_000, interval: 50 })
    await promote(s3Store, 'run-2')
    advance(2)
    expect((await source.current()).promotion.runId).toBe('run-2')
    expect(dispose).not.toHaveBeenCalled()
    release()
    const [result] = await inFlight
    expect(result?.age).toBeTypeOf('number')
    expect(dispose).toHaveBeenCalledOnce()
  })

  it('keeps serving the old model when a reload fails, logs it, and retries after the interval', async () => {
    await promote(s3Store, 'run-1')
    const { source, log, advance } = sourceWithClock(s3Store, 10)
    await source.current()
    await promote(s3Store, 'run-missing')
    advance(11)
    expect((await source.current()).promotion.runId).toBe('run-1')
    expect(log).toHaveBeenCalledWith(
      expect.objectContaining({ level: 'ERROR', runId: 'run-1', error: expect.stringMatching(/run-missing/) })
    )
    expect(source.status()).toMatchObject({ runId: 'run-1', lastError: expect.stringMatching(/run-missing/) })
    await promote(s3Store, 'run-2')
    expect((await source.current()).promotion.runId).toBe('run-1') // not before the interval
    advance(11)
    expect((await source.current()).promotion.runId).toBe('run-2')
    expect(source.status().lastError).toBeUndefined()
  })

  it('reports a first load that fails as ModelLoadError and does not retry it before the interval', async () => {
    await promote(s3Store, 'run-missing')
    const { store, loads } = countingStore()
    let now = 0
    const source = new ModelSource({ store, refreshSeconds: 30, log: vi.fn(), now: () => now })
    await expect(source.current()).rejects.toBeInstanceOf(ModelLoadError)
    await expect(source.current()).rejects.toBeInstanceOf(ModelLoadError)
    expect(loads()).toHaveLength(0) // meta.json is missing: loadModel stops before model.json
    await promote(s3Store, 'run-1')
    now += 31_000
    expect((await source.current()).promotion.runId).toBe('run-1')
  })
})

describe('ModelSource with a face detector', () => {
  it('loads the detector once and shares it across model swaps', async () => {
    await promote(s3Store, 'run-1')
    let now = 0
    const detector = vi.fn(async () => squareDetector)
    const source = new ModelSource({ store: s3Store, refreshSeconds: 10, log: vi.fn(), now: () => now, detector })
    const first = await source.current()
    expect(first.faces.detector).toBe(squareDetector)
    await promote(s3Store, 'run-2')
    now += 11_000
    const second = await source.current()
    expect(second.promotion.runId).toBe('run-2')
    expect(second.faces.detector).toBe(squareDetector)
    expect(second.faces.predictor).toBe(second.predictor)
    expect(detector).toHaveBeenCalledOnce()
  })

  it('serves without a detector when it fails to load, logs why, and tries again with the next model', async () => {
    await promote(s3Store, 'run-1')
    let now = 0
    const detector = vi
      .fn<() => Promise<FaceDetector>>()
      .mockRejectedValueOnce(new Error('weights missing'))
      .mockResolvedValue(squareDetector)
    const log = vi.fn<Log>()
    const source = new ModelSource({ store: s3Store, refreshSeconds: 10, log, now: () => now, detector })
    const first = await source.current()
    expect(first.faces.detector).toBeUndefined()
    expect(log).toHaveBeenCalledWith(expect.objectContaining({ level: 'ERROR', error: 'weights missing' }))
    // auto still answers, for the whole image, and says it fell back
    expect(await first.faces.analyze(jpeg, 'auto')).toMatchObject({
      fellBack: true,
      faces: [{ method: 'whole-image' }],
    })
    await promote(s3Store, 'run-2')
    now += 11_000
    expect((await source.current()).faces.detector).toBe(squareDetector)
    expect(detector).toHaveBeenCalledTimes(2)
  })
})

describe('predict app across a promotion', () => {
  it("answers with the new runId after the refresh interval, with the new model's predictions", async () => {
    await promote(s3Store, 'run-1')
    const { source, advance } = sourceWithClock(s3Store, 60)
    const app = createApp({ models: source })
    const ask = async () => {
      const headers = { 'content-type': 'image/jpeg' }
      const res = await app.request('/predict', { method: 'POST', headers, body: jpeg })
      expect(res.status).toBe(200)
      const body = (await res.json()) as { images: { faces: { age: number }[] }[]; model: { runId: string } }
      return { age: body.images[0]!.faces[0]!.age, model: body.model }
    }
    expect((await ask()).model.runId).toBe('run-1')
    await promote(s3Store, 'run-2')
    expect((await ask()).model.runId).toBe('run-1')
    advance(61)
    const after = await ask()
    expect(after.model.runId).toBe('run-2')
    expect(after.age).toBe(Math.round((await analyzeDirectly(s3Store, 'run-2', jpeg)).faces[0]!.age * 10) / 10)
  })
})
