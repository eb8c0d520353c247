import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { ModelMeta } from '../../core/model-io.js'
import { FolderStore } from '../../core/store/folder-store.js'
import { getJson, putJson } from '../../core/store/object-store.js'
import { TrainMetrics } from '../../core/train-documents.js'
import { parseTrainConfig } from '../../trainer/config.js'
import { evaluateRun } from '../../trainer/evaluate-run.js'
import { loadDatasetForTraining } from '../../trainer/load.js'
import { train } from '../../trainer/train.js'
import { makeImages, writeFolder } from '../../support/images.js'

// A tiny run on a subset (--max-images), so evaluate must pick the same subset to reproduce it.
const SETTINGS = { epochs: 2, imageSize: 32, batchSize: 16, width: 8, learningRate: 3e-3, seed: 5, maxImages: 300 }
const quiet = () => {}
const FIGURES = ['count', 'ageMae', 'ageRmse', 'cs5', 'genderAccuracy', 'genderMae'] as const

describe('npm run evaluate', () => {
  let dataDir: string
  let outDir: string
  let recorded: TrainMetrics

  beforeAll(async () => {
    const engine = await initEngine()
    const images = await makeImages({ count: 340, size: 40, seed: 8 })
    dataDir = await writeFolder(images.map((i) => ({ name: i.name, bytes: i.bytes })))
    outDir = await mkdtemp(join(tmpdir(), 'agegender-evaluate-'))
    const { items, dataset } = await loadDatasetForTraining({ path: dataDir }, quiet)
    recorded = await train({
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

  it("reproduces the run's test figures from its exported model, age range included", async () => {
    // Act
    const r = await evaluateRun({ modelDir: outDir, data: dataDir, split: 'test', log: quiet, tty: false })
    // Assess
    expect(recorded.test!.count).toBeLessThan(340 / 10 + 15) // the subset, not the whole folder
    for (const k of FIGURES) expect(r.metrics[k], k).toBeCloseTo(recorded.test![k], 9)
    expect(r.recorded?.ageMae).toBe(recorded.test!.ageMae)
    expect(r.ageInterval).toBeDefined()
    expect(r.ageInterval!.coverage).toBeCloseTo(recorded.test!.ageInterval!.coverage, 9)
    expect(r.ageInterval!.meanWidth).toBeCloseTo(recorded.test!.ageInterval!.meanWidth, 6)
    expect(r.wrote).toEqual([])
  })

  it('takes a model folder too (model.json and meta.json at its root), with no run to compare against', async () => {
    const r = await evaluateRun({
      modelDir: join(outDir, 'model'),
      data: dataDir,
      split: 'test',
      log: quiet,
      tty: false,
    })
    expect(r.recorded).toBeUndefined()
    // no metrics.json, so no --max-images subset to repeat: the whole folder's test split
    expect(r.metrics.count).toBeGreaterThan(recorded.test!.count)
    expect(Number.isFinite(r.metrics.ageMae)).toBe(true)
  })

  it('--calibrate adds the age range to a model trained without one, the same as training would have', async () => {
    // Prepare: strip the calibration, as in a model trained before it existed
    const store = new FolderStore(outDir)
    const meta = (await getJson(store, 'model/meta.json', ModelMeta))!
    const { ageInterval, ...old } = meta
    await putJson(store, 'model/meta.json', old)
    const { ageInterval: _, ...oldMetrics } = recorded
    await putJson(store, 'metrics.json', { ...oldMetrics, test: { ...recorded.test, ageInterval: undefined } })
    await store.put('report.html', 'old report')
    // Act
    const r = await evaluateRun({
      modelDir: outDir,
      data: dataDir,
      split: 'test',
      calibrate: true,
      log: quiet,
      tty: false,
    })
    // Assess
    expect(r.wrote).toEqual(['model/meta.json', 'metrics.json', 'report.html'])
    const written = (await getJson(store, 'model/meta.json', ModelMeta))!
    expect(written.ageInterval).toEqual(ageInterval)
    expect(written.summary?.testAgeMae).toBe(meta.summary?.testAgeMae)
    const metrics = (await getJson(store, 'metrics.json', TrainMetrics))!
    expect(metrics.ageInterval).toEqual(ageInterval)
    expect(metrics.test!.ageInterval!.coverage).toBeCloseTo(recorded.test!.ageInterval!.coverage, 9)
    expect(metrics.history).toEqual(recorded.history)
    const report = Buffer.from((await store.get('report.html'))!).toString()
    expect(report).toContain('Age range')
    expect(r.calibrated?.val.count).toBe(recorded.val!.count)
  })
})
