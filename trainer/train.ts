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
import { toInferenceModel } from '../core/inference-model.js'
import { setLearningRate } from '../core/engine/index.js'
import { baselines, testSummary } from '../core/metrics.js'
import { createModel } from '../core/model.js'
import { defaultMeta, saveModel, type ModelMeta } from '../core/model-io.js'
import { Predictor } from '../core/predictor.js'
import { loadPretrainedBytes } from '../core/pretrained.js'
import { readPretrained } from '../core/pretrained-source.js'
import { toUnitBatch, normalize } from '../core/preprocess.js'
import { createRng, shuffled } from '../core/random.js'
import { putJson } from '../core/store/object-store.js'
import type { EpochRecord, TrainMetrics } from '../core/train-documents.js'
import { calibrateRun } from './age-interval.js'
import { augmentBatch } from './augment.js'
import {
  bestPrefixOf,
  copyWeightsFrom,
  readCheckpointState,
  restoreCheckpoint,
  saveBest,
  saveCheckpoint,
} from './checkpoint.js'
import { learningRateAt } from './config.js'
import { headVariableNames, LayerwiseAdam } from './layerwise-adam.js'
import { WeightAverage } from './weight-average.js'
import { decodeSplits } from './decode.js'
import { dedupeTraining } from './dedupe.js'
import { evaluate, type Evaluation } from './evaluation.js'
import { machineInfo } from './machine.js'
import { createProgress } from './progress.js'
import { renderReport } from './report.js'
import { createTrainStep } from './step.js'
import type { TrainEvent, TrainOptions } from './train-types.js'

/** The run cannot proceed (no usable images, incompatible checkpoint...): its message is the failure reason. */
export class TrainingError extends Error {
  override readonly name = 'TrainingError'
}

/** `shouldStop()` said stop; a checkpoint of the last finished step was saved, a resumed run continues there. */
export class TrainingStopped extends Error {
  override readonly name = 'TrainingStopped'
  constructor(
    readonly epochsDone: number,
    readonly batchesDone: number,
    readonly step: number
  ) {
    super(`stopped after step ${step} (epoch ${epochsDone + 1}, batch ${batchesDone}); checkpoint saved`)
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : 30
}

/** Every `items.length / max`-th item: the same subset for the same dataset, as `evaluate` reproduces it. */
export function subsample<T>(items: readonly T[], max: number | undefined): readonly T[] {
  if (max === undefined || items.length <= max) return items
  const stride = items.length / max
  return Array.from({ length: max }, (_, i) => items[Math.floor(i * stride)]!)
}

export async function train(options: TrainOptions): Promise<TrainMetrics> {
  const { config, output, backend } = options
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
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
  const { splits, failures } = await decodeSplits(items, config.imageSize, {
    write: log,
    ...(options.tty === undefined ? {} : { tty: options.tty }),
  })
  timings.decodeSeconds = since(t0)
  for (const f of failures.slice(0, 20)) log(`skipped ${items[f.index]!.name}: ${f.reason}`)
  await emit({ type: 'decoded', images: items.length, failures: failures.length })

  const counts = { train: splits.train.length, val: splits.val.length, test: splits.test.length }
  log(`images: train ${counts.train}, val ${counts.val}, test ${counts.test}, unreadable ${failures.length}`)
  if (counts.train === 0) {
    throw new TrainingError(
      `no usable training images in ${options.dataset.source}: ${items.length} labelled files, ` +
        `${failures.length} unreadable; skipped by reason ${JSON.stringify(options.dataset.skipped)}`
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
    ageHead: config.ageLoss === 'dldl' ? 'distribution' : 'regression',
  })
  if (config.pretrained) {
    const file = await readPretrained(config.pretrained, {
      sha256: config.pretrainedSha256,
      cache: options.pretrainedCache,
      log,
    })
    const layers = loadPretrainedBytes(model, file.bytes)
    log(
      `initialized ${layers} backbone layers from ${config.pretrained} (${file.from}, sha256 ${file.sha256.slice(0, 12)}…)`
    )
  } else {
    log('training from scratch: no pretrained weights given')
  }
  // fine-tuning: the new heads at the full rate, the pretrained backbone slower (frozen at first if asked)
  if (config.pretrained && config.workers > 1) {
    throw new TrainingError('fine-tuning (pretrained weights) runs on one worker: drop --workers or --pretrained')
  }
  const layerwise = config.pretrained
    ? new LayerwiseAdam(config.learningRate, headVariableNames(model), config.backboneLearningRateScale)
    : null
  const optimizer = layerwise ?? tf.train.adam(config.learningRate)
  const stepFn = createTrainStep(model, optimizer, { genderWeight: config.genderWeight, replicas: config.workers })
  // validation, the best-epoch choice and the export see the averaged weights when --ema is on
  const average = config.ema > 0 ? new WeightAverage(model, config.ema) : null
  const withAverages = <T>(fn: () => Promise<T>): Promise<T> => (average ? average.withAverages(fn) : fn())
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify([
        config.imageSize,
        config.width,
        config.batchSize,
        config.epochs,
        config.seed,
        config.ageLoss,
        config.ema,
        counts,
      ])
    )
    .digest('hex')
    .slice(0, 16)
  const meta = (extra: Partial<ModelMeta> = {}) =>
    defaultMeta(config.imageSize, {
      ...(options.runId ? { runId: options.runId } : {}),
      trainedWith: {
        backend: backend.name,
        epochs: config.epochs,
        ...(options.packageVersion ? { packageVersion: options.packageVersion } : {}),
      },
      ...extra,
    })

  let history: EpochRecord[] = []
  let best: { epoch: number; valAgeMae: number } | null = null
  let startEpoch = 0
  let startBatch = 0
  let startSums = { loss: 0, age: 0, gender: 0 }
  let bestPrefix = bestPrefixOf(undefined)
  let step = 0
  if (options.resume) {
    const state = await readCheckpointState(output)
    if (state) {
      if (state.fingerprint !== fingerprint) {
        throw new TrainingError('the checkpoint was made with other settings or data; start a new run or drop --resume')
      }
      const savedAverages = await restoreCheckpoint(output, model, optimizer, state)
      if (average) {
        if (!savedAverages) throw new TrainingError('the checkpoint has no weight averages; drop --ema or --resume')
        average.restore(savedAverages)
      }
      tf.dispose(Object.values(savedAverages ?? {}))
      ;({ history, best, step } = state)
      startEpoch = state.epochsDone
      startBatch = state.batchesDone ?? 0
      startSums = state.epochSums ?? startSums
      bestPrefix = bestPrefixOf(state)
      log(`resumed after epoch ${startEpoch}${startBatch ? `, batch ${startBatch}` : ''}`)
      await emit({ type: 'resumed', epochsDone: startEpoch, batchesDone: startBatch })
    }
  }

  // 3. epochs
  const batchesPerEpoch = Math.max(1, Math.floor(counts.train / config.batchSize))
  const totalSteps = batchesPerEpoch * config.epochs
  const frozenSteps = Math.round(totalSteps * config.frozenBackboneFraction)
  const valPredictor = new Predictor(model, { ...meta(), testTimeFlip: false })
  const clock = options.clock ?? (() => performance.now())
  const checkpointEveryMs = options.checkpointEveryMinutes ? options.checkpointEveryMinutes * 60_000 : undefined
  let lastCheckpointAt = clock()
  /** A checkpoint after `epochsDone` whole epochs and, inside the next one, `within.batchesDone` batches. */
  const checkpoint = async (epochsDone: number, within?: { batchesDone: number; sums: typeof startSums }) => {
    await saveCheckpoint(
      output,
      model,
      optimizer,
      meta(),
      {
        epochsDone,
        ...(within ? { batchesDone: within.batchesDone, epochSums: within.sums } : {}),
        step,
        history,
        best,
        fingerprint,
        bestPrefix,
      },
      average?.named()
    )
    lastCheckpointAt = clock()
  }
  const saveMidEpoch = async (epoch: number, batchesDone: number, sums: typeof startSums) => {
    await checkpoint(epoch, { batchesDone, sums })
    await emit({ type: 'checkpoint', epochsDone: epoch, batchesDone, step })
  }
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
    const firstBatch = epoch === startEpoch ? Math.min(startBatch, batchesPerEpoch) : 0
    let sum = epoch === startEpoch && firstBatch > 0 ? { ...startSums } : { loss: 0, age: 0, gender: 0 }
    let lr = config.learningRate
    for (let b = firstBatch; b < batchesPerEpoch; b++) {
      const batch = order.slice(b * config.batchSize, (b + 1) * config.batchSize).map((i) => splits.train[i]!)
      lr = learningRateAt(config, step, totalSteps)
      if (layerwise) layerwise.backboneScale = step < frozenSteps ? 0 : config.backboneLearningRateScale
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
      average?.update(step)
      step++
      sum = { loss: sum.loss + losses.loss, age: sum.age + losses.ageLoss, gender: sum.gender + losses.genderLoss }
      const n = b + 1
      bar.update(n, {
        loss: sum.loss / n,
        ageMae: sum.age / n,
        'img/s': Math.round((((n - firstBatch) * config.batchSize) / since(tEpoch)) * 10) / 10,
      })
      if (options.shouldStop?.()) {
        bar.stop()
        await saveMidEpoch(epoch, n, sum)
        throw new TrainingStopped(epoch, n, step)
      }
      if (checkpointEveryMs !== undefined && n < batchesPerEpoch && clock() - lastCheckpointAt >= checkpointEveryMs) {
        await saveMidEpoch(epoch, n, sum)
      }
    }
    bar.stop()
    const trainSeconds = since(tEpoch)
    const imagesPerSecond = ((batchesPerEpoch - firstBatch) * config.batchSize) / trainSeconds
    const val =
      counts.val > 0 ? await withAverages(() => evaluate(valPredictor, splits.val, config.evalBatchSize)) : null
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
        (val
          ? ` val age MAE ${val.metrics.ageMae.toFixed(2)} val gender acc ${val.metrics.genderAccuracy.toFixed(3)}`
          : '') +
        ` ${imagesPerSecond.toFixed(1)} img/s ${record.seconds.toFixed(0)} s`
    )
    const score = val ? val.metrics.ageMae : -record.epoch // without a validation split the last epoch is best
    if (best === null || score < best.valAgeMae) {
      best = { epoch: record.epoch, valAgeMae: score }
      bestPrefix = await withAverages(() => saveBest(output, model, meta()))
    }
    await checkpoint(epoch + 1)
    await emit({ type: 'epoch', epoch: epoch + 1, epochs: config.epochs, record })
  }
  timings.trainSeconds = since(tTrain)

  // 4. best epoch → test metrics, export
  if (average) {
    average.swap() // from here on the model holds the averages
    average.dispose()
    log(`exporting the exponential average of the weights (decay ${config.ema})`)
  }
  const bestEpoch = best?.epoch ?? config.epochs
  if (bestEpoch !== history.at(-1)?.epoch) {
    await copyWeightsFrom(output, bestPrefix, model)
    log(`restored the best epoch (${bestEpoch}) by validation age MAE`)
  }
  const tEval = performance.now()
  const finalMeta = meta()
  // the final figures come from the served form (BatchNorm folded), as the predict API and `evaluate` compute them
  const { model: served } = await toInferenceModel(model)
  const predictor = new Predictor(served, finalMeta)
  let valEval: Evaluation | null
  let testEval: Evaluation | null
  try {
    valEval = counts.val > 0 ? await evaluate(predictor, splits.val, config.evalBatchSize) : null
    testEval = counts.test > 0 ? await evaluate(predictor, splits.test, config.evalBatchSize) : null
  } finally {
    served.dispose()
  }
  const interval = valEval ? calibrateRun(valEval.predictions, testEval?.predictions ?? null, log) : null
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
  if (summary && interval?.test) {
    summary.testAgeRangeCoverage = interval.test.coverage
    summary.testAgeRangeWidth = interval.test.meanWidth
  }
  const exportMeta = {
    ...finalMeta,
    ...(summary ? { summary } : {}),
    ...(interval ? { ageInterval: interval.calibration } : {}),
  }
  await saveModel(model, exportMeta, output, 'model/')
  timings.totalSeconds = since(t0)
  const metrics: TrainMetrics = {
    schemaVersion: 1,
    ...(options.runId ? { runId: options.runId } : {}),
    createdAt: new Date().toISOString(),
    test: testEval ? { ...testEval.metrics, ...(interval?.test ? { ageInterval: interval.test } : {}) } : null,
    val: valEval?.metrics ?? null,
    bestEpoch,
    baselines: base,
    history,
    throughput: {
      trainImagesPerSecond: throughputs.length ? median(throughputs) : 0,
      evalImagesPerSecond: testEval?.imagesPerSecond ?? null,
    },
    backend: {
      name: backend.name,
      description: backend.description,
      ...(backend.device ? { device: backend.device } : {}),
    },
    ...(backend.report ? { engine: backend.report } : {}),
    dataset: {
      ...options.dataset,
      counts: { ...options.dataset.counts, ...counts },
      skipped: {
        ...options.dataset.skipped,
        ...(failures.length ? { 'unreadable-image': failures.length } : {}),
      },
      skippedExamples: [
        ...(options.dataset.skippedExamples ?? []),
        ...failures.slice(0, 20).map((f) => ({ name: items[f.index]!.name, reason: 'unreadable-image' })),
      ],
      decodeFailures: failures.length,
      ...(deduped ? { dedupe: deduped.report } : {}),
    },
    config,
    timings,
    minutes: timings.totalSeconds / 60,
    machine: machineInfo(),
    ageInterval: interval?.calibration ?? null,
  }
  await putJson(output, 'metrics.json', metrics)
  await output.put('report.html', renderReport(metrics, testEval?.predictions ?? []), {
    contentType: 'text/html; charset=utf-8',
  })
  await emit({ type: 'done', metrics })
  await (stepFn as { close?: () => Promise<void> }).close?.()
  model.dispose()
  optimizer.dispose()
  return metrics
}
