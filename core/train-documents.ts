/**
 * The JSON documents a training run stores, one zod schema each, with their types inferred from it:
 *
 * ```
 * runs/<runId>/metrics.json             TrainMetrics: what the run measured, how and on what (also models/<runId>/)
 * runs/<runId>/checkpoint/state.json    CheckpointState: which checkpoint is current, epochs and steps done
 * ```
 *
 * The pipeline's other documents have their schema beside their owner: `status.json` and `models/latest.json`
 * in `runs.ts` (RunStatus, Promotion), a model's `meta.json` in `model-io.ts` (ModelMeta).
 *
 * Documents written by older runs must still parse: a field added later is optional here, and `metrics.json`
 * objects are loose, so a reader that writes the document back (`evaluate --calibrate`) keeps what it does not
 * know. Read them with `getJson(store, key, schema)` (store/object-store.ts).
 * @module
 */
import { z } from 'zod'
import { AgeIntervalCalibration, IntervalEvaluation } from './age-interval.js'
import { EngineReport } from './engine/report.js'
import { Baselines, type GroupMetrics, Metrics } from './metrics.js'
import { WeightSpec } from './model-io.js'

/** One training epoch's figures (metrics.json `history`, and the checkpoint's). */
export const EpochRecord = z.object({
  epoch: z.number().int(),
  learningRate: z.number(),
  trainLoss: z.number(),
  trainAgeMae: z.number(),
  trainGenderLoss: z.number(),
  valAgeMae: z.number().nullable(),
  valGenderAccuracy: z.number().nullable(),
  seconds: z.number(),
  imagesPerSecond: z.number(),
  /** The epoch's training image size when progressive resizing trained it below the model's input size. */
  trainImageSize: z.number().int().positive().optional(),
})
export type EpochRecord = z.infer<typeof EpochRecord>

/** What label cleaning did to the training split (trainer/dedupe.ts). */
export const DedupeReport = z.object({
  /** Training groups of two or more byte-identical images. */
  groups: z.number().int(),
  /** Training items removed in all (duplicates merged away plus dropped groups). */
  removed: z.number().int(),
  /** Groups whose ages disagreed and were given their median age. */
  ageConflicts: z.number().int(),
  /** Groups whose genders disagreed and were dropped whole. */
  genderConflicts: z.number().int(),
})
export type DedupeReport = z.infer<typeof DedupeReport>

/** The dataset as loaded: where from, images per split, files skipped by reason. */
export const DatasetInfo = z.looseObject({
  source: z.string(),
  counts: z.record(z.string(), z.number()),
  skipped: z.record(z.string(), z.number()),
  skippedExamples: z.array(z.object({ name: z.string(), reason: z.string() })).optional(),
  loadSeconds: z.number().optional(),
  /** What label cleaning did to the training split; absent when it was off (or before it existed). */
  dedupe: DedupeReport.optional(),
})
export type DatasetInfo = z.infer<typeof DatasetInfo>

/** The machine a run was measured on (trainer/machine.ts): figures mean little without it. */
export const MachineInfo = z.object({
  /** `os.cpus()[0].model`, e.g. "Intel(R) Xeon(R) CPU @ 2.20GHz". */
  cpuModel: z.string(),
  /** Logical CPUs the OS reports (hardware threads). */
  threads: z.number().int(),
  /** What Node may use (`os.availableParallelism()`: cgroup/affinity limits included). */
  availableParallelism: z.number().int(),
  memoryGiB: z.number(),
  node: z.string(),
  platform: z.string(),
  arch: z.string(),
})
export type MachineInfo = z.infer<typeof MachineInfo>

/**
 * The training settings as the run used them (trainer/config.ts's TrainConfig). Checked only as far as readers
 * rely on them: runs from before a setting existed lack it, and every other setting is kept as stored, in its
 * order (a record intersected with the checked fields keeps the stored key order, where an object would put
 * its own fields first).
 */
export const StoredTrainConfig = z.record(z.string(), z.unknown()).and(
  z.object({
    epochs: z.number().int(),
    imageSize: z.number().int(),
    batchSize: z.number().int(),
    width: z.number().int().optional(),
    maxImages: z.number().int().optional(),
    evalBatchSize: z.number().int().optional(),
  })
)
export type StoredTrainConfig = z.infer<typeof StoredTrainConfig>

/** `metrics.json`: everything a finished run measured, and the settings, data and machine it measured it with. */
export const TrainMetrics = z.looseObject({
  schemaVersion: z.literal(1),
  runId: z.string().optional(),
  createdAt: z.string(),
  /** Test split metrics of the best epoch (null when the dataset has no test images), with the age range's coverage. */
  test: Metrics.extend({ ageInterval: IntervalEvaluation.optional() }).nullable(),
  val: Metrics.nullable(),
  bestEpoch: z.number().int(),
  baselines: Baselines.nullable(),
  history: z.array(EpochRecord),
  throughput: z.looseObject({ trainImagesPerSecond: z.number(), evalImagesPerSecond: z.number().nullable() }),
  backend: z.looseObject({ name: z.string(), description: z.string(), device: z.string().optional() }),
  /** Each engine kernel and patch on or off, with the reason (see core/engine/report.ts); absent before the report. */
  engine: EngineReport.optional(),
  dataset: DatasetInfo.omit({ dedupe: true }).extend({
    decodeFailures: z.number().int(),
    dedupe: DedupeReport.optional(),
  }),
  config: StoredTrainConfig,
  timings: z.record(z.string(), z.number()),
  /**
   * Wall-clock minutes from decoding to export; a resumed run adds the epochs its earlier processes finished
   * (their `seconds` in `history`), not their decoding or a partial epoch.
   */
  minutes: z.number().optional(),
  machine: MachineInfo.optional(),
  /**
   * Calibrated age ranges (also in the model's meta.json); null when the validation split is too small, absent
   * in runs from before calibration.
   */
  ageInterval: AgeIntervalCalibration.nullable().optional(),
})
export type TrainMetrics = z.infer<typeof TrainMetrics>

/** The headline of a metrics.json, as the predict API shows it: the by-group breakdowns, history and settings left out. */
export interface MetricsHeadline {
  readonly createdAt: string
  readonly bestEpoch: number
  readonly test: GroupMetrics | null
  readonly val: GroupMetrics | null
  readonly baselines: Baselines | null
}

const headlineOf = (g: GroupMetrics): GroupMetrics => ({
  count: g.count,
  ageMae: g.ageMae,
  ageRmse: g.ageRmse,
  cs5: g.cs5,
  genderAccuracy: g.genderAccuracy,
  genderMae: g.genderMae,
})

export function metricsHeadline(m: TrainMetrics): MetricsHeadline {
  return {
    createdAt: m.createdAt,
    bestEpoch: m.bestEpoch,
    test: m.test && headlineOf(m.test),
    val: m.val && headlineOf(m.val),
    baselines: m.baselines,
  }
}

/** `checkpoint/state.json` (trainer/checkpoint.ts): written last, so it only ever points at a complete checkpoint. */
export const CheckpointState = z.object({
  version: z.literal(1),
  /** Epochs finished (1-based count). */
  epochsDone: z.number().int().min(0),
  /** Batches of epoch `epochsDone + 1` already trained (a mid-epoch checkpoint). @default 0 */
  batchesDone: z.number().int().min(0).optional(),
  /** Running loss sums of that partial epoch, so its averages continue. */
  epochSums: z.object({ loss: z.number(), age: z.number(), gender: z.number() }).optional(),
  step: z.number().int().min(0),
  history: z.array(EpochRecord),
  best: z.object({ epoch: z.number().int(), valAgeMae: z.number() }).nullable(),
  optimizerSpecs: z.array(WeightSpec),
  /** Layout of `average.bin`, the weight averages (`--ema`); absent without them. */
  averageSpecs: z.array(WeightSpec).optional(),
  /** Settings that must not change across a resume (image size, width, batch size...). */
  fingerprint: z.string(),
  /** Prefix of the current checkpoint (`checkpoint/a/`); absent in checkpoints from before slots. */
  prefix: z.string().optional(),
  /** Prefix of the best model (`checkpoint/best-a/`); absent in checkpoints from before slots. */
  bestPrefix: z.string().optional(),
})
export type CheckpointState = z.infer<typeof CheckpointState>
