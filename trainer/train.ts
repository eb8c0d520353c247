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
import { createRng, type Rng, shuffled } from '../core/random.js'
import { putJson } from '../core/store/object-store.js'
import type { DedupeReport, EpochRecord, TrainMetrics } from '../core/train-documents.js'
import { calibrateRun, type RunAgeInterval } from './age-interval.js'
import { augmentBatch, TEST_CROP } from './augment.js'
import {
  bestPrefixOf,
  copyWeightsFrom,
  readCheckpointState,
  restoreCheckpoint,
  saveBest,
  saveCheckpoint,
} from './checkpoint.js'
import {
  learningRateAt,
  type ResolvedTrainConfig,
  resolveWorkers,
  trainingSecondsLeft,
  trainingSizeAt,
} from './config.js'
import { headVariableNames, LayerwiseAdam } from './layerwise-adam.js'
import { WeightAverage } from './weight-average.js'
import { decodeSplits, type DecodeResult } from './decode.js'
import { dedupeTraining } from './dedupe.js'
import { evaluate, type Evaluation, type Sample } from './evaluation.js'
import { machineInfo, replicaRuntime } from './machine.js'
import { formatDuration } from '../core/format.js'
import { createProgress } from '../core/progress.js'
import { renderReport } from './report.js'
import { createTrainStep, type TrainStep } from './step.js'
import type { Split, TrainEvent, TrainItem, TrainOptions } from './train-types.js'

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
  const run = startRun(options)
  const data = await prepareData(run)
  const learner = await buildLearner(run, data)
  const progress = await restore(run, learner)
  await runEpochs(run, data, learner, progress)
  const result = await evaluateAndExport(run, data, learner, progress)
  const metrics = await writeResults(run, data, progress, result)
  await run.emit({ type: 'done', metrics })
  await (learner.stepFn as { close?: () => Promise<void> }).close?.()
  learner.model.dispose()
  learner.optimizer.dispose()
  return metrics
}

const since = (t: number) => (performance.now() - t) / 1000

/** What every step of a run shares: its options, log, events and timings. */
interface Run {
  readonly options: TrainOptions
  /** The options' configuration with `workers: 'auto'` decided for this backend and machine. */
  readonly config: ResolvedTrainConfig
  readonly log: (line: string) => void
  readonly emit: (e: TrainEvent) => Promise<void>
  readonly timings: Record<string, number>
  /** When the run started (`performance.now()`). */
  readonly t0: number
}

function startRun(options: TrainOptions): Run {
  return {
    options,
    config: resolveWorkers(options.config, replicaRuntime(options.backend.name)),
    log: options.log ?? ((line: string) => process.stderr.write(`${line}\n`)),
    emit: async (e: TrainEvent) => options.onEvent?.(e),
    timings: {},
    t0: performance.now(),
  }
}

interface PreparedData {
  /** The items trained on, after subsampling and label cleaning (decode failures index into them). */
  readonly items: readonly TrainItem[]
  readonly dedupe: DedupeReport | null
  readonly splits: Record<Split, Sample[]>
  readonly failures: DecodeResult['failures']
  readonly counts: { train: number; val: number; test: number }
}

/** 1. Decode every image once, by split. */
async function prepareData(run: Run): Promise<PreparedData> {
  const { options, config, log } = run
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
  run.timings.decodeSeconds = since(run.t0)
  for (const f of failures.slice(0, 20)) log(`skipped ${items[f.index]!.name}: ${f.reason}`)
  await run.emit({ type: 'decoded', images: items.length, failures: failures.length })

  const counts = { train: splits.train.length, val: splits.val.length, test: splits.test.length }
  log(`images: train ${counts.train}, val ${counts.val}, test ${counts.test}, unreadable ${failures.length}`)
  if (counts.train === 0) {
    throw new TrainingError(
      `no usable training images in ${options.dataset.source}: ${items.length} labelled files, ` +
        `${failures.length} unreadable; skipped by reason ${JSON.stringify(options.dataset.skipped)}`
    )
  }
  return { items, dedupe: deduped?.report ?? null, splits, failures, counts }
}

/** The model and what trains it. */
interface Learner {
  readonly model: tf.LayersModel
  readonly optimizer: tf.Optimizer
  /** The optimizer when fine-tuning (backbone and heads at different rates). */
  readonly layerwise: LayerwiseAdam | null
  readonly stepFn: TrainStep
  /** The exponential weight average (`--ema`). */
  readonly average: WeightAverage | null
  /** Runs `fn` with the averaged weights in the model when `--ema` is on. */
  readonly withAverages: <T>(fn: () => Promise<T>) => Promise<T>
  /** Settings and data that must not change across a resume. */
  readonly fingerprint: string
  readonly meta: (extra?: Partial<ModelMeta>) => ModelMeta
}

/** 2. The model (pretrained backbone or from scratch), its optimizer and train step. */
async function buildLearner(run: Run, data: PreparedData): Promise<Learner> {
  const { options, config, log } = run
  const model = createModel({
    inputSize: config.imageSize,
    ageBias: median(data.splits.train.map((s) => s.age)),
    dropout: config.dropout,
    seed: config.seed,
    width: config.width,
    ageHead: config.ageLoss === 'l1' ? 'regression' : 'distribution',
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
  if (config.workers > 1 || options.config.workers === 'auto') {
    const how = options.config.workers === 'auto' ? ' (--workers auto)' : ''
    log(
      `data-parallel: ${config.workers} replica${config.workers > 1 ? 's' : ''}${how}, ${config.batchSize} images a step`
    )
  }
  const stepFn = createTrainStep(model, optimizer, {
    genderWeight: config.genderWeight,
    genderSmoothing: config.genderSmoothing,
    distributionLoss: config.ageLoss === 'mean-variance' ? 'mean-variance' : 'dldl',
    replicas: config.workers,
  })
  // validation, the best-epoch choice and the export see the averaged weights when --ema is on
  const average = config.ema > 0 ? new WeightAverage(model, config.ema) : null
  const withAverages = <T>(fn: () => Promise<T>): Promise<T> => (average ? average.withAverages(fn) : fn())
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify([
        config.imageSize,
        config.progressiveFrom,
        config.width,
        config.batchSize,
        config.epochs,
        config.seed,
        config.ageLoss,
        config.ema,
        config.genderSmoothing,
        data.counts,
      ])
    )
    .digest('hex')
    .slice(0, 16)
  const meta = (extra: Partial<ModelMeta> = {}) =>
    defaultMeta(config.imageSize, {
      centreCrop: config.augment ? TEST_CROP : 1,
      ...(options.runId ? { runId: options.runId } : {}),
      trainedWith: {
        backend: options.backend.name,
        epochs: config.epochs,
        ...(options.packageVersion ? { packageVersion: options.packageVersion } : {}),
      },
      ...extra,
    })
  return { model, optimizer, layerwise, stepFn, average, withAverages, fingerprint, meta }
}

type LossSums = { loss: number; age: number; gender: number }

/** Where training stands: what the checkpoint records, updated as epochs go by. */
interface Progress {
  history: EpochRecord[]
  best: { epoch: number; valAgeMae: number } | null
  step: number
  bestPrefix: string
  /** Where this process started: the epoch, the batch inside it and that partial epoch's loss sums. */
  readonly startEpoch: number
  readonly startBatch: number
  readonly startSums: LossSums
}

/** 3. With `resume`, continue from the checkpoint in the output store, if there is one. */
async function restore(run: Run, learner: Learner): Promise<Progress> {
  const fresh: Progress = {
    history: [],
    best: null,
    step: 0,
    bestPrefix: bestPrefixOf(undefined),
    startEpoch: 0,
    startBatch: 0,
    startSums: { loss: 0, age: 0, gender: 0 },
  }
  if (!run.options.resume) return fresh
  const state = await readCheckpointState(run.options.output)
  if (!state) return fresh
  if (state.fingerprint !== learner.fingerprint) {
    throw new TrainingError('the checkpoint was made with other settings or data; start a new run or drop --resume')
  }
  const { model, optimizer, average } = learner
  const savedAverages = await restoreCheckpoint(run.options.output, model, optimizer, state)
  if (average) {
    if (!savedAverages) throw new TrainingError('the checkpoint has no weight averages; drop --ema or --resume')
    average.restore(savedAverages)
  }
  tf.dispose(Object.values(savedAverages ?? {}))
  const progress: Progress = {
    history: state.history,
    best: state.best,
    step: state.step,
    bestPrefix: bestPrefixOf(state),
    startEpoch: state.epochsDone,
    startBatch: state.batchesDone ?? 0,
    startSums: state.epochSums ?? fresh.startSums,
  }
  run.log(`resumed after epoch ${progress.startEpoch}${progress.startBatch ? `, batch ${progress.startBatch}` : ''}`)
  await run.emit({ type: 'resumed', epochsDone: progress.startEpoch, batchesDone: progress.startBatch })
  return progress
}

/** 4. The epochs: train, validate, keep the best, checkpoint (also mid-epoch when asked to stop or on a timer). */
async function runEpochs(run: Run, data: PreparedData, learner: Learner, progress: Progress): Promise<void> {
  const { options, config, log, emit } = run
  const { splits, counts } = data
  const { model, optimizer, layerwise, stepFn, average, withAverages, meta } = learner
  const output = options.output
  const { startEpoch, startBatch, startSums } = progress
  const batchesPerEpoch = Math.max(1, Math.floor(counts.train / config.batchSize))
  const totalSteps = batchesPerEpoch * config.epochs
  const frozenSteps = Math.round(totalSteps * config.frozenBackboneFraction)
  const valPredictor = new Predictor(model, { ...meta(), testTimeFlip: false })
  const clock = options.clock ?? (() => performance.now())
  const checkpointEveryMs = options.checkpointEveryMinutes ? options.checkpointEveryMinutes * 60_000 : undefined
  let lastCheckpointAt = clock()
  /** A checkpoint after `epochsDone` whole epochs and, inside the next one, `within.batchesDone` batches. */
  const checkpoint = async (epochsDone: number, within?: { batchesDone: number; sums: LossSums }) => {
    await saveCheckpoint(
      output,
      model,
      optimizer,
      meta(),
      {
        epochsDone,
        ...(within ? { batchesDone: within.batchesDone, epochSums: within.sums } : {}),
        step: progress.step,
        history: progress.history,
        best: progress.best,
        fingerprint: learner.fingerprint,
        bestPrefix: progress.bestPrefix,
      },
      average?.named()
    )
    lastCheckpointAt = clock()
  }
  const saveMidEpoch = async (epoch: number, batchesDone: number, sums: LossSums) => {
    await checkpoint(epoch, { batchesDone, sums })
    await emit({ type: 'checkpoint', epochsDone: epoch, batchesDone, step: progress.step })
  }
  const tTrain = performance.now()
  /** Epochs this process trained whole, for the time left (a resumed partial epoch would understate it). */
  const timed: { epoch: number; seconds: number }[] = []
  for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
    const tEpoch = performance.now()
    const order = shuffled(
      splits.train.map((_, i) => i),
      createRng(config.seed * 7919 + epoch)
    )
    const augRng = createRng(config.seed * 104729 + epoch)
    const size = trainingSizeAt(config, epoch)
    const bar = createProgress({
      label: `epoch ${epoch + 1}/${config.epochs}${size === config.imageSize ? '' : ` at ${size} px`}`,
      total: batchesPerEpoch,
      ...(options.tty === undefined ? {} : { tty: options.tty }),
      write: log,
    })
    const firstBatch = epoch === startEpoch ? Math.min(startBatch, batchesPerEpoch) : 0
    let sum = epoch === startEpoch && firstBatch > 0 ? { ...startSums } : { loss: 0, age: 0, gender: 0 }
    let lr = config.learningRate
    for (let b = firstBatch; b < batchesPerEpoch; b++) {
      const batch = order.slice(b * config.batchSize, (b + 1) * config.batchSize).map((i) => splits.train[i]!)
      lr = learningRateAt(config, progress.step, totalSteps)
      if (layerwise) layerwise.backboneScale = progress.step < frozenSteps ? 0 : config.backboneLearningRateScale
      setLearningRate(optimizer, lr)
      const { x, age, gender } = batchTensors(batch, config, augRng, size)
      const losses = stepFn(x, age, gender)
      tf.dispose([x, age, gender])
      average?.update(progress.step)
      progress.step++
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
        throw new TrainingStopped(epoch, n, progress.step)
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
      ...(size === config.imageSize ? {} : { trainImageSize: size }),
    }
    progress.history = [...progress.history, record]
    if (firstBatch === 0) timed.push({ epoch, seconds: record.seconds })
    const secondsLeft = trainingSecondsLeft(config, timed, epoch + 1)
    log(describeEpoch(record, config.epochs, secondsLeft))
    const score = val ? val.metrics.ageMae : -record.epoch // without a validation split the last epoch is best
    if (progress.best === null || score < progress.best.valAgeMae) {
      progress.best = { epoch: record.epoch, valAgeMae: score }
      progress.bestPrefix = await withAverages(() => saveBest(output, model, meta()))
    }
    await checkpoint(epoch + 1)
    await emit({
      type: 'epoch',
      epoch: epoch + 1,
      epochs: config.epochs,
      record,
      ...(secondsLeft === undefined ? {} : { secondsLeft }),
    })
  }
  run.timings.trainSeconds = since(tTrain)
}

interface Exported {
  readonly bestEpoch: number
  readonly valEval: Evaluation | null
  readonly testEval: Evaluation | null
  readonly interval: RunAgeInterval | null
}

/**
 * One training batch as tensors: normalized images (augmented when the recipe says so, resampled to `size` when
 * progressive resizing trains this epoch smaller), ages, genders.
 */
function batchTensors(batch: readonly Sample[], config: ResolvedTrainConfig, augRng: Rng, size: number) {
  const x = tf.tidy(() => {
    const unit = toUnitBatch(
      batch.map((s) => s.pixels),
      config.imageSize
    )
    if (config.augment) return normalize(augmentBatch(unit, augRng, size))
    return normalize(size === config.imageSize ? unit : tf.image.resizeBilinear(unit, [size, size]))
  })
  const age = tf.tensor2d(
    batch.map((s) => s.age),
    [batch.length, 1]
  )
  const gender = tf.tensor2d(
    batch.map((s) => s.gender),
    [batch.length, 1]
  )
  return { x, age, gender }
}

/** The log line of a finished epoch, with the training time left when it is known and epochs remain. */
function describeEpoch(record: EpochRecord, epochs: number, secondsLeft: number | undefined): string {
  const val =
    record.valAgeMae === null
      ? ''
      : ` val age MAE ${record.valAgeMae.toFixed(2)} val gender acc ${record.valGenderAccuracy?.toFixed(3)}`
  return (
    `epoch ${record.epoch}/${epochs}: loss ${record.trainLoss.toFixed(3)} train age MAE ${record.trainAgeMae.toFixed(2)}` +
    `${val} ${record.imagesPerSecond.toFixed(1)} img/s ${record.seconds.toFixed(0)} s` +
    describeTimeLeft(secondsLeft)
  )
}

/** `, about 48 min 0 s left` after an epoch's line or status; empty when unknown or when no training is left. */
export function describeTimeLeft(secondsLeft: number | undefined): string {
  return secondsLeft ? `, about ${formatDuration(secondsLeft)} left` : ''
}

/** 5. The best epoch's weights (averaged with `--ema`), measured as served, calibrated and exported to `model/`. */
async function evaluateAndExport(
  run: Run,
  data: PreparedData,
  learner: Learner,
  progress: Progress
): Promise<Exported> {
  const { options, config, log } = run
  const { splits, counts } = data
  const { model, average } = learner
  if (average) {
    average.swap() // from here on the model holds the averages
    average.dispose()
    log(`exporting the exponential average of the weights (decay ${config.ema})`)
  }
  const bestEpoch = progress.best?.epoch ?? config.epochs
  if (bestEpoch !== progress.history.at(-1)?.epoch) {
    await copyWeightsFrom(options.output, progress.bestPrefix, model)
    log(`restored the best epoch (${bestEpoch}) by validation age MAE`)
  }
  const tEval = performance.now()
  const finalMeta = learner.meta()
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
  run.timings.evalSeconds = since(tEval)
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
  await saveModel(model, exportMeta, options.output, 'model/')
  run.timings.totalSeconds = since(run.t0)
  return { bestEpoch, valEval, testEval, interval }
}

/** 6. `metrics.json` and `report.html`. */
async function writeResults(run: Run, data: PreparedData, progress: Progress, result: Exported): Promise<TrainMetrics> {
  const { options, config, timings } = run
  const { splits, counts, failures, items } = data
  const { testEval, valEval, interval } = result
  const { backend, output } = options
  const base = testEval
    ? baselines(
        splits.train.map((s) => s.age),
        splits.train.map((s) => s.gender),
        testEval.predictions
      )
    : null
  // like `minutes` below, over every epoch of the run, also those a resumed run's earlier processes trained
  const throughputs = progress.history.map((h) => h.imagesPerSecond)
  const metrics: TrainMetrics = {
    schemaVersion: 1,
    ...(options.runId ? { runId: options.runId } : {}),
    createdAt: new Date().toISOString(),
    test: testEval ? { ...testEval.metrics, ...(interval?.test ? { ageInterval: interval.test } : {}) } : null,
    val: valEval?.metrics ?? null,
    bestEpoch: result.bestEpoch,
    baselines: base,
    history: progress.history,
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
      ...(data.dedupe ? { dedupe: data.dedupe } : {}),
    },
    config,
    timings,
    // a resumed run also counts the epochs its earlier processes trained (their decoding is not recorded)
    minutes:
      (timings.totalSeconds! + progress.history.slice(0, progress.startEpoch).reduce((s, h) => s + h.seconds, 0)) / 60,
    machine: machineInfo(),
    ageInterval: interval?.calibration ?? null,
  }
  await putJson(output, 'metrics.json', metrics)
  await output.put('report.html', renderReport(metrics, testEval?.predictions ?? []), {
    contentType: 'text/html; charset=utf-8',
  })
  return metrics
}
