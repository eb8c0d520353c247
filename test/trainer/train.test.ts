import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, cpus, tmpdir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type EngineInfo, gemmOffReason, initEngine } from '../../core/engine/index.js'
import { loadModel } from '../../core/model-io.js'
import { Predictor } from '../../core/predictor.js'
import { FolderStore } from '../../core/store/folder-store.js'
import { TEST_CROP } from '../../trainer/augment.js'
import { parseTrainConfig } from '../../trainer/config.js'
import { loadDatasetForTraining } from '../../trainer/load.js'
import { train, TrainingError } from '../../trainer/train.js'
import type { TrainEvent } from '../../trainer/train-types.js'
import { corruptImage, makeImages, writeFolder } from '../../support/images.js'

// A small width-8 ResNet18 on 32 px synthetic faces whose size/brightness encode age and tint encodes gender.
const SETTINGS = { epochs: 6, imageSize: 32, batchSize: 16, width: 8, learningRate: 3e-3, seed: 7 }
const quiet = () => {}

describe('train', () => {
  let dataDir: string
  let outDir: string
  let engine: EngineInfo
  /** The run both the learning and the export tests look at: trained once, here, not by an earlier test. */
  let metrics: Awaited<ReturnType<typeof train>>

  beforeAll(async () => {
    engine = await initEngine()
    const images = await makeImages({ count: 360, size: 48, seed: 3 })
    dataDir = await writeFolder([
      ...images.map((i) => ({ name: i.name, bytes: i.bytes })),
      { name: '30_1_0_20170101000000999.jpg.chip.jpg', bytes: corruptImage(5) },
      { name: 'not-a-label.jpg', bytes: images[0]!.bytes },
    ])
    outDir = await mkdtemp(join(tmpdir(), 'agegender-train-'))
    const { items, dataset } = await loadDatasetForTraining({ path: dataDir }, quiet)
    metrics = await train({
      items,
      dataset,
      config: parseTrainConfig(SETTINGS),
      output: new FolderStore(outDir),
      backend: engine,
      log: quiet,
      tty: false,
    })
  })
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true })
    await rm(outDir, { recursive: true, force: true })
  })

  it('learns the signal: losses fall and the test MAE beats the training median', () => {
    const h = metrics.history
    expect(h).toHaveLength(SETTINGS.epochs)
    expect(h.at(-1)!.trainLoss).toBeLessThan(h[0]!.trainLoss)
    expect(metrics.test).not.toBeNull()
    expect(metrics.test!.ageMae).toBeLessThan(metrics.baselines!.medianAgeMae)
    expect(metrics.test!.genderAccuracy).toBeGreaterThan(metrics.baselines!.majorityGenderAccuracy)
    expect(metrics.dataset.skipped).toMatchObject({ 'unreadable-image': 1, 'bad-name': 1 })
    expect(metrics.backend).toEqual({ name: engine.name, description: engine.description })
    expect(metrics.engine?.features['training-kernels']?.on).toBe(engine.name === 'wasm')
    expect(Object.keys(metrics.test!.byAgeBand).length).toBeGreaterThan(3)
    expect(metrics.throughput.trainImagesPerSecond).toBeGreaterThan(0)
    // results people can trust: the machine, the minutes, a dataset path that is not this machine's
    expect(metrics.machine?.cpuModel).toBe(cpus()[0]!.model.trim())
    expect(metrics.machine?.threads).toBe(cpus().length)
    expect(metrics.minutes).toBeCloseTo(metrics.timings.totalSeconds! / 60, 6)
    expect(isAbsolute(metrics.dataset.source)).toBe(false)
    expect(JSON.stringify(metrics)).not.toContain(dataDir)
    // the calibrated age range, fitted on the validation split and measured on the test split
    expect(metrics.ageInterval?.method).toBe('split-conformal')
    expect(metrics.ageInterval!.bands.reduce((n, b) => n + b.count, 0)).toBe(metrics.val!.count)
    const interval = metrics.test!.ageInterval!
    expect(interval.count).toBe(metrics.test!.count)
    expect(interval.coverage).toBeGreaterThan(0.5)
    expect(interval.meanWidth).toBeGreaterThan(0)
  })

  it('exports a model that reloads and predicts what the run measured', async () => {
    const store = new FolderStore(outDir)
    const metricsJson = JSON.parse(Buffer.from((await store.get('metrics.json'))!).toString())
    expect(metricsJson.engine).toEqual(engine.report)
    const { model, meta } = await loadModel(store, 'model/')
    expect(meta.inputSize).toBe(SETTINGS.imageSize)
    // trained on random crops (augmentation on by default): served on the centre crop of their mean side
    expect(meta.centreCrop).toBe(TEST_CROP)
    expect(meta.summary?.testAgeMae).toBeCloseTo(metricsJson.test.ageMae, 6)
    expect(meta.ageInterval).toEqual(metricsJson.ageInterval)
    expect(meta.summary?.testAgeRangeCoverage).toBe(metricsJson.test.ageInterval.coverage)
    const [face] = await makeImages({ count: 1, size: 48, seed: 99 })
    const [p] = await new Predictor(model, meta).predictImages([face!.bytes])
    expect(p!.age).toBeGreaterThan(0)
    expect(p!.genderProbability).toBeGreaterThanOrEqual(0)
    expect(p!.genderProbability).toBeLessThanOrEqual(1)
    const report = Buffer.from((await store.get('report.html'))!).toString()
    expect(report).toContain('<svg')
    expect(report).toContain(metricsJson.test.ageMae.toFixed(2))
    expect(report).toContain('Age range')
    expect(report).toContain(metricsJson.machine.cpuModel)
    model.dispose()
  })

  it('resumes from the last checkpoint after an interruption', async () => {
    // Prepare: a run stopped after its second epoch
    const { items, dataset } = await loadDatasetForTraining({ path: dataDir }, quiet)
    const dir = await mkdtemp(join(tmpdir(), 'agegender-resume-'))
    const output = new FolderStore(dir)
    const config = parseTrainConfig({ ...SETTINGS, epochs: 3 })
    const stop = new Error('stopped')
    await expect(
      train({
        items,
        dataset,
        config,
        output,
        backend: engine,
        log: quiet,
        tty: false,
        onEvent: (e) => {
          if (e.type === 'epoch' && e.epoch === 2) throw stop
        },
      })
    ).rejects.toBe(stop)
    // Act
    const events: TrainEvent[] = []
    const metrics = await train({
      items,
      dataset,
      config,
      output,
      backend: engine,
      log: quiet,
      tty: false,
      resume: true,
      onEvent: (e) => void events.push(e),
    })
    // Assess
    expect(events).toContainEqual({ type: 'resumed', epochsDone: 2, batchesDone: 0 })
    expect(events.filter((e) => e.type === 'epoch').map((e) => (e as { epoch: number }).epoch)).toEqual([3])
    expect(metrics.history.map((r) => r.epoch)).toEqual([1, 2, 3])
    await rm(dir, { recursive: true, force: true })
  })

  it('trains DLDL-v2 with a weight average, and a stopped run resumes to the same exported model', async () => {
    // Prepare
    const { items, dataset } = await loadDatasetForTraining({ path: dataDir }, quiet)
    const config = parseTrainConfig({ ...SETTINGS, epochs: 3, ageLoss: 'dldl', ema: 0.9 })
    const run = async (dir: string, stopAfter?: number) => {
      const stop = new Error('stopped')
      const options = { items, dataset, config, output: new FolderStore(dir), backend: engine, log: quiet, tty: false }
      if (stopAfter !== undefined) {
        await expect(
          train({
            ...options,
            onEvent: (e) => {
              if (e.type === 'epoch' && e.epoch === stopAfter) throw stop
            },
          })
        ).rejects.toBe(stop)
      }
      return train({ ...options, resume: stopAfter !== undefined })
    }
    const whole = await mkdtemp(join(tmpdir(), 'agegender-ema-'))
    const resumed = await mkdtemp(join(tmpdir(), 'agegender-ema-resumed-'))
    // Act
    const a = await run(whole)
    const b = await run(resumed, 2)
    // Assess: the averaged, exported weights and the figures agree, so the averages were checkpointed
    expect(a.config.ageLoss).toBe('dldl')
    expect(a.test!.ageMae).toBeLessThan(a.baselines!.medianAgeMae)
    expect(b.test!.ageMae).toBeCloseTo(a.test!.ageMae, 4)
    // the resumed run's minutes count the two epochs its first process trained
    const earlier = (b.history[0]!.seconds + b.history[1]!.seconds) / 60
    expect(b.minutes).toBeCloseTo(b.timings.totalSeconds! / 60 + earlier, 6)
    // and its training speed is over every epoch, not only the one the second process trained
    const speeds = b.history.map((r) => r.imagesPerSecond).sort((p, q) => p - q)
    expect(b.throughput.trainImagesPerSecond).toBe(speeds[1])
    // float32 round-off after the restore (Adam's powers) is all that may differ
    for (const [i, r] of b.history.entries()) expect(r.valAgeMae).toBeCloseTo(a.history[i]!.valAgeMae!, 4)
    const weights = async (dir: string) => {
      const { model } = await loadModel(new FolderStore(dir), 'model/')
      const values = model.getWeights().map((w) => Array.from(w.dataSync()))
      expect(model.layers.some((l) => l.name === 'age_logits')).toBe(true)
      model.dispose()
      return values
    }
    const [x, y] = [await weights(resumed), await weights(whole)]
    expect(x.map((w) => w.length)).toEqual(y.map((w) => w.length))
    const gap = x.reduce((m, w, i) => w.reduce((mm, v, j) => Math.max(mm, Math.abs(v - y[i]![j]!)), m), 0)
    expect(gap).toBeLessThan(1e-3)
    await rm(whole, { recursive: true, force: true })
    await rm(resumed, { recursive: true, force: true })
  })

  it('trains the first epochs on smaller images under progressive resizing, and evaluates and exports at full size', async () => {
    // Prepare
    const { items, dataset } = await loadDatasetForTraining({ path: dataDir }, quiet)
    const dir = await mkdtemp(join(tmpdir(), 'agegender-progressive-'))
    const output = new FolderStore(dir)
    const logged: string[] = []
    // Act: 3 epochs at 16, 24 and 32 px
    const run = await train({
      items,
      dataset,
      config: parseTrainConfig({ ...SETTINGS, epochs: 3, progressiveFrom: 16 }),
      output,
      backend: engine,
      log: (line) => void logged.push(line),
      tty: false,
    })
    // Assess
    expect(run.config.progressiveFrom).toBe(16)
    expect(run.history.map((r) => r.trainImageSize)).toEqual([16, 24, undefined])
    expect(logged.some((l) => l.startsWith('epoch 1/3 at 16 px'))).toBe(true)
    // the epoch lines say how long the rest takes, until the last
    expect(logged.find((l) => l.startsWith('epoch 1/3:'))).toMatch(/ s, about .+ left$/)
    expect(logged.find((l) => l.startsWith('epoch 3/3:'))).not.toMatch(/left/)
    expect(run.history.every((r) => Number.isFinite(r.trainLoss) && r.valAgeMae !== null)).toBe(true)
    const { model, meta } = await loadModel(output, 'model/')
    expect(meta.inputSize).toBe(SETTINGS.imageSize)
    expect(model.inputs[0]!.shape).toEqual([null, SETTINGS.imageSize, SETTINGS.imageSize, 3])
    const [face] = await makeImages({ count: 1, size: 48, seed: 5 })
    const [p] = await new Predictor(model, meta).predictImages([face!.bytes])
    expect(p!.age).toBeGreaterThan(0)
    const report = Buffer.from((await output.get('report.html'))!).toString()
    expect(report).toContain('<th>train px</th>')
    expect(report).toContain('<tr><td>1</td><td>16</td>')
    model.dispose()
    await rm(dir, { recursive: true, force: true })
  })

  it('decides --workers auto for the backend it trains on: two replicas where each convolves on our GEMM', async () => {
    // Prepare: 32-image batches, so that two replicas get shards of 16
    const { items, dataset } = await loadDatasetForTraining({ path: dataDir }, quiet)
    const dir = await mkdtemp(join(tmpdir(), 'agegender-auto-workers-'))
    const logged: string[] = []
    const expected = engine.name === 'wasm' && gemmOffReason() === null && availableParallelism() >= 2 ? 2 : 1
    // Act
    const run = await train({
      items,
      dataset,
      config: parseTrainConfig({ ...SETTINGS, epochs: 1, batchSize: 32, maxImages: 160 }),
      output: new FolderStore(dir),
      backend: engine,
      log: (line) => void logged.push(line),
      tty: false,
    })
    // Assess: the decision is recorded as a number, said in the log, and the run trained
    expect(run.config.workers).toBe(expected)
    expect(logged).toContain(
      `data-parallel: ${expected} replica${expected > 1 ? 's' : ''} (--workers auto), 32 images a step`
    )
    expect(Number.isFinite(run.history[0]!.trainLoss)).toBe(true)
    await rm(dir, { recursive: true, force: true })
  })

  it('fails with a reason when no image is usable', async () => {
    const dir = await writeFolder([{ name: '20_0_0_20170101000000000.jpg.chip.jpg', bytes: corruptImage(1) }])
    const { items, dataset } = await loadDatasetForTraining({ path: dir }, quiet)
    const out = await mkdtemp(join(tmpdir(), 'agegender-empty-'))
    await expect(
      train({
        items,
        dataset,
        config: parseTrainConfig(SETTINGS),
        output: new FolderStore(out),
        backend: engine,
        log: quiet,
        tty: false,
      })
    ).rejects.toThrow(TrainingError)
    await rm(dir, { recursive: true, force: true })
    await rm(out, { recursive: true, force: true })
  })
})
