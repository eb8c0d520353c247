/**
 * The training run: decode once, train with Adam + warm-up/cosine schedule and augmentation, checkpoint every
 * epoch, keep the best epoch by validation age MAE, evaluate it on the test split, export the model,
 * `metrics.json` and `report.html` into the output store.
 *
 * Pure of process concerns: the caller picks the backend, parses settings and provides the store.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { createHash } from 'node:crypto'
import { setLearningRate, type EngineReport } from '../core/engine/index.js'
import { baselines, testSummary, type Metrics } from '../core/metrics.js'
import { createModel } from '../core/model.js'
import { defaultMeta, saveModel, type ModelMeta } from '../core/model-io.js'
import { Predictor } from '../core/predictor.js'
import { loadPretrainedFile } from '../core/pretrained.js'
import { toUnitBatch, normalize } from '../core/preprocess.js'
import { createRng, shuffled } from '../core/random.js'
import { putJson, type ObjectStore } from '../core/store/object-store.js'
import { augmentBatch } from './augment.js'
import { copyWeightsFrom, readCheckpointState, restoreCheckpoint, saveBest, saveCheckpoint } from './checkpoint.js'
import { learningRateAt, type TrainConfig } from './config.js'
import { decodeAll } from './decode.js'
import { dedupeTraining, type DedupeReport } from './dedupe.js'
import { evaluate, type Sample } from './evaluation.js'
import { createProgress } from './progress.js'
import { renderReport } from './report.js'
import { createTrainStep } from './step.js'

export type Split = 'train' | 'val' | 'test'

export interface TrainItem {
  readonly name: string
  readonly bytes: Uint8Array
  readonly label: { readonly age: number; readonly gender: 0 | 1; readonly race?: number }
  readonly split: Split
  /** sha256 of `bytes` when the loader already computed it. */
  readonly sha256?: string
}

export interface DatasetInfo {
  readonly source: string
  readonly counts: Record<string, number>
  readonly skipped: Record<string, number>
  readonly skippedExamples?: readonly { name: string; reason: string }[]
  readonly loadSeconds?: number
  /** What {@link dedupeTraining} did to the training split. */
  readonly dedupe?: DedupeReport
}

export interface EpochRecord {
  readonly epoch: number
  readonly learningRate: number
  readonly trainLoss: number
  readonly trainAgeMae: number
  readonly trainGenderLoss: number
  readonly valAgeMae: number | null
  readonly valGenderAccuracy: number | null
  readonly seconds: number
  readonly imagesPerSecond: number
}

export type TrainEvent =
  | { type: 'decoded'; images: number; failures: number }
  | { type: 'resumed'; epochsDone: number }
  | { type: 'epoch'; epoch: number; epochs: number; record: EpochRecord }
  | { type: 'done'; metrics: TrainMetrics }

export interface TrainOptions {
  readonly items: readonly TrainItem[]
  readonly dataset: DatasetInfo
  readonly config: TrainConfig
  /** Where model/, metrics.json, report.html and checkpoint/ go (relative keys). */
  readonly output: ObjectStore
  /** The engine in use (`initEngine`'s result); its `report`, when given, goes to metrics.json as `engine`. */
  readonly backend: { name: string; description: string; report?: EngineReport }
  /** Continue from `checkpoint/` in the output store if one is there. */
  readonly resume?: boolean
  readonly runId?: string
  readonly onEvent?: (event: TrainEvent) => void | Promise<void>
  readonly log?: (line: string) => void
  /** Live progress bars (default: when stderr is a terminal). */
  readonly tty?: boolean
  readonly packageVersion?: string
}

export interface TrainMetrics {
  readonly schemaVersion: 1
  readonly runId?: string
  readonly createdAt: string
  /** Test split metrics of the best epoch (null when the dataset has no test images). */
  readonly test: Metrics | null
  readonly val: Metrics | null
  readonly bestEpoch: number
  readonly baselines: ReturnType<typeof baselines> | null
  readonly history: EpochRecord[]
  readonly throughput: { trainImagesPerSecond: number; evalImagesPerSecond: number | null }
  readonly backend: { name: string; description: string }
  /** Each engine kernel and patch on or off, with the reason (see core/engine/report.ts). */
  readonly engine?: EngineReport
  readonly dataset: DatasetInfo & { decodeFailures: number }
  readonly config: TrainConfig
  readonly timings: Record<string, number>
}

/** The run cannot proceed (no usable images, incompatible checkpoint...): its message is the failure reason. */
export class TrainingError extends Error {
  override readonly name = 'TrainingError'
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : 30
}

function subsample<T>(items: readonly T[], max: number | undefined): readonly T[] {
  if (max === undefined || items.length <= max) return items
  const stride = items.length / max
  return Array.from({ length: max }, (_, i) => items[Math.floor(i * stride)]!)
}

export async function train(options: TrainOptions): Promise<TrainMetrics> {
  const { config, output, backend } = options
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'))
  const emit = async (e: TrainEvent) => options.onEvent?.(e)
  const t0 = performance.now()
  const timings: Record<string, number> = {}
  const since = (t: number) => (performance.now() - t) / 1000

  // 1. decode every image once
  const sampled = subsample(options.items, config.maxImages)
  const deduped = config.dedupeTrain ? dedupeTraining(sampled) : null
  const items = deduped?.items ?? sampled
  if (deduped?.report.groups) {
    const r = deduped.report
    log(
      `training split: ${r.groups} groups of identical images merged (${r.ageConflicts} with disagreeing ages → median, ` +
        `${r.genderConflicts} with disagreeing genders dropped), ${r.removed} items removed`
    )
  }
  const decodeBar = createProgress({ label: 'decode', total: items.length, ...(options.tty === undefined ? {} : { tty: options.tty }), write: log })
  const decoded = await decodeAll(
    items.map((i) => i.bytes),
    config.imageSize,
    (done) => decodeBar.update(done)
  )
  decodeBar.stop()
  timings.decodeSeconds = since(t0)
  for (const f of decoded.failures.slice(0, 20)) log(`skipped ${items[f.index]!.name}: ${f.reason}`)
  await emit({ type: 'decoded', images: items.length, failures: decoded.failures.length })

  const splits: Record<Split, Sample[]> = { train: [], val: [], test: [] }
  items.forEach((item, i) => {
    const pixels = decoded.pixels[i]
    if (pixels) splits[item.split].push({ pixels, ...item.label })
  })
  const counts = { train: splits.train.length, val: splits.val.length, test: splits.test.length }
  log(`images: train ${counts.train}, val ${counts.val}, test ${counts.test}, unreadable ${decoded.failures.length}`)
  if (counts.train === 0) {
    throw new TrainingError(
      `no usable training images in ${options.dataset.source}: ${items.length} labelled files, ` +
        `${decoded.failures.length} unreadable; skipped by reason ${JSON.stringify(options.dataset.skipped)}`
    )
  }

  // 2. model and optimizer, possibly restored
  const trainAges = splits.train.map((s) => s.age)
  const model = createModel({
    inputSize: config.imageSize,
    ageBias: median(trainAges),
    dropout: config.dropout,
    seed: config.seed,
    width: config.width,
  })
  if (config.pretrained) {
    const layers = await loadPretrainedFile(model, config.pretrained)
    log(`initialized ${layers} backbone layers from ${config.pretrained}`)
  }
  const optimizer = tf.train.adam(config.learningRate)
  const stepFn = createTrainStep(model, optimizer, { genderWeight: config.genderWeight, replicas: config.workers })
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([config.imageSize, config.width, config.batchSize, config.epochs, config.seed, counts]))
    .digest('hex')
    .slice(0, 16)
  const meta = (extra: Partial<ModelMeta> = {}) =>
    defaultMeta(config.imageSize, {
      ...(options.runId ? { runId: options.runId } : {}),
      trainedWith: { backend: backend.name, epochs: config.epochs, ...(options.packageVersion ? { packageVersion: options.packageVersion } : {}) },
      ...extra,
    })

  let history: EpochRecord[] = []
  let best: { epoch: number; valAgeMae: number } | null = null
  let startEpoch = 0
  let step = 0
  if (options.resume) {
    const state = await readCheckpointState(output)
    if (state) {
      if (state.fingerprint !== fingerprint) {
        throw new TrainingError('the checkpoint was made with other settings or data; start a new run or drop --resume')
      }
      await restoreCheckpoint(output, model, optimizer, state)
      ;({ history, best, step } = state)
      startEpoch = state.epochsDone
      log(`resumed after epoch ${startEpoch}`)
      await emit({ type: 'resumed', epochsDone: startEpoch })
    }
  }

  // 3. epochs
  const batchesPerEpoch = Math.max(1, Math.floor(counts.train / config.batchSize))
  const totalSteps = batchesPerEpoch * config.epochs
  const valPredictor = new Predictor(model, { ...meta(), testTimeFlip: false })
  const tTrain = performance.now()
  for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
    const tEpoch = performance.now()
    const order = shuffled(
      splits.train.map((_, i) => i),
      createRng(config.seed * 7919 + epoch)
    )
    const augRng = createRng(config.seed * 104729 + epoch)
    const bar = createProgress({
      label: `epoch ${epoch + 1}/${config.epochs}`,
      total: batchesPerEpoch,
      ...(options.tty === undefined ? {} : { tty: options.tty }),
      write: log,
    })
    let sum = { loss: 0, age: 0, gender: 0 }
    let lr = config.learningRate
    for (let b = 0; b < batchesPerEpoch; b++) {
      const batch = order.slice(b * config.batchSize, (b + 1) * config.batchSize).map((i) => splits.train[i]!)
      lr = learningRateAt(config, step, totalSteps)
      setLearningRate(optimizer, lr)
      const x = tf.tidy(() => {
        const unit = toUnitBatch(
          batch.map((s) => s.pixels),
          config.imageSize
        )
        return normalize(config.augment ? augmentBatch(unit, augRng) : unit)
      })
      const age = tf.tensor2d(
        batch.map((s) => s.age),
        [batch.length, 1]
      )
      const gender = tf.tensor2d(
        batch.map((s) => s.gender),
        [batch.length, 1]
      )
      const losses = stepFn(x, age, gender)
      tf.dispose([x, age, gender])
      step++
      sum = { loss: sum.loss + losses.loss, age: sum.age + losses.ageLoss, gender: sum.gender + losses.genderLoss }
      const n = b + 1
      bar.update(n, {
        loss: sum.loss / n,
        ageMae: sum.age / n,
        'img/s': Math.round(((n * config.batchSize) / since(tEpoch)) * 10) / 10,
      })
    }
    bar.stop()
    const trainSeconds = since(tEpoch)
    const imagesPerSecond = (batchesPerEpoch * config.batchSize) / trainSeconds
    const val = counts.val > 0 ? await evaluate(valPredictor, splits.val, config.evalBatchSize) : null
    const record: EpochRecord = {
      epoch: epoch + 1,
      learningRate: lr,
      trainLoss: sum.loss / batchesPerEpoch,
      trainAgeMae: sum.age / batchesPerEpoch,
      trainGenderLoss: sum.gender / batchesPerEpoch,
      valAgeMae: val?.metrics.ageMae ?? null,
      valGenderAccuracy: val?.metrics.genderAccuracy ?? null,
      seconds: since(tEpoch),
      imagesPerSecond,
    }
    history = [...history, record]
    log(
      `epoch ${record.epoch}/${config.epochs}: loss ${record.trainLoss.toFixed(3)} train age MAE ${record.trainAgeMae.toFixed(2)}` +
        (val ? ` val age MAE ${val.metrics.ageMae.toFixed(2)} val gender acc ${val.metrics.genderAccuracy.toFixed(3)}` : '') +
        ` ${imagesPerSecond.toFixed(1)} img/s ${record.seconds.toFixed(0)} s`
    )
    const score = val ? val.metrics.ageMae : -record.epoch // without a validation split the last epoch is best
    if (best === null || score < best.valAgeMae) {
      best = { epoch: record.epoch, valAgeMae: score }
      await saveBest(output, model, meta())
    }
    await saveCheckpoint(output, model, optimizer, meta(), { epochsDone: epoch + 1, step, history, best, fingerprint })
    await emit({ type: 'epoch', epoch: epoch + 1, epochs: config.epochs, record })
  }
  timings.trainSeconds = since(tTrain)

  // 4. best epoch → test metrics, export
  const bestEpoch = best?.epoch ?? config.epochs
  if (bestEpoch !== history.at(-1)?.epoch) {
    await copyWeightsFrom(output, 'checkpoint/best/', model)
    log(`restored the best epoch (${bestEpoch}) by validation age MAE`)
  }
  const tEval = performance.now()
  const finalMeta = meta()
  const predictor = new Predictor(model, finalMeta)
  const valEval = counts.val > 0 ? await evaluate(predictor, splits.val, config.evalBatchSize) : null
  const testEval = counts.test > 0 ? await evaluate(predictor, splits.test, config.evalBatchSize) : null
  timings.evalSeconds = since(tEval)
  const base = testEval
    ? baselines(
        trainAges,
        splits.train.map((s) => s.gender),
        testEval.predictions
      )
    : null
  const throughputs = history.slice(startEpoch).map((h) => h.imagesPerSecond)
  const summary = testSummary(testEval?.metrics)
  await saveModel(model, { ...finalMeta, ...(summary ? { summary } : {}) }, output, 'model/')
  timings.totalSeconds = since(t0)
  const metrics: TrainMetrics = {
    schemaVersion: 1,
    ...(options.runId ? { runId: options.runId } : {}),
    createdAt: new Date().toISOString(),
    test: testEval?.metrics ?? null,
    val: valEval?.metrics ?? null,
    bestEpoch,
    baselines: base,
    history,
    throughput: {
      trainImagesPerSecond: throughputs.length ? median(throughputs) : 0,
      evalImagesPerSecond: testEval?.imagesPerSecond ?? null,
    },
    backend: { name: backend.name, description: backend.description },
    ...(backend.report ? { engine: backend.report } : {}),
    dataset: {
      ...options.dataset,
      counts: { ...options.dataset.counts, ...counts },
      skipped: {
        ...options.dataset.skipped,
        ...(decoded.failures.length ? { 'unreadable-image': decoded.failures.length } : {}),
      },
      skippedExamples: [
        ...(options.dataset.skippedExamples ?? []),
        ...decoded.failures.slice(0, 20).map((f) => ({ name: items[f.index]!.name, reason: 'unreadable-image' })),
      ],
      decodeFailures: decoded.failures.length,
      ...(deduped ? { dedupe: deduped.report } : {}),
    },
    config,
    timings,
  }
  await putJson(output, 'metrics.json', metrics)
  await output.put('report.html', renderReport(metrics, testEval?.predictions ?? []), { contentType: 'text/html; charset=utf-8' })
  await emit({ type: 'done', metrics })
  await (stepFn as { close?: () => Promise<void> }).close?.()
  model.dispose()
  optimizer.dispose()
  return metrics
}
