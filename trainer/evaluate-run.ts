/**
 * Re-evaluates a saved model on a dataset, as served (BatchNorm folded, test-time flip), and, for a training
 * output folder, beside the figures its `metrics.json` recorded: the same data gives the same figures.
 *
 * With `calibrate`, it also fits the calibrated age range on the validation split (for models trained before
 * the trainer did it), measures it on the test split, and writes it into the model's `meta.json` (and the run's
 * `metrics.json` and `report.html` when the folder has them).
 * @module
 */
import { evaluateAgeInterval, type IntervalEvaluation } from '../core/age-interval.js'
import { loadInferenceModel } from '../core/inference-model.js'
import type { Metrics, Prediction } from '../core/metrics.js'
import { ModelMeta, modelPrefixIn } from '../core/model-io.js'
import { Predictor } from '../core/predictor.js'
import { FolderStore } from '../core/store/folder-store.js'
import { getJson, putJson } from '../core/store/object-store.js'
import { TrainMetrics } from '../core/train-documents.js'
import { calibrateRun, toCalibrationSamples, type RunAgeInterval } from './age-interval.js'
import { decodeSplits } from './decode.js'
import { evaluate } from './evaluation.js'
import { loadDatasetForTraining } from './load.js'
import { renderReport } from './report.js'
import { subsample } from './train.js'
import type { Split } from './train-types.js'

export const EVAL_SPLITS = ['test', 'val', 'train', 'all'] as const
export type EvalSplit = (typeof EVAL_SPLITS)[number]

export interface EvaluateRunOptions {
  /** A training output folder (model under `model/`) or a model folder (`model.json` + `meta.json`). */
  readonly modelDir: string
  /** Dataset folder or archive, as for training. */
  readonly data: string
  readonly split: EvalSplit
  /** Fit the age range on the validation split and write it into the model's meta.json. */
  readonly calibrate?: boolean
  /** Nominal coverage for `calibrate`. @default 0.9 */
  readonly level?: number
  readonly log?: (line: string) => void
  readonly tty?: boolean
}

export interface EvaluateRunResult {
  readonly split: EvalSplit
  readonly metrics: Metrics
  readonly unreadable: number
  readonly imagesPerSecond: number
  /** Coverage and width of the model's age range on this split (after `calibrate`, the new one). */
  readonly ageInterval?: IntervalEvaluation
  /** What the run's metrics.json recorded for this split, when there is one. */
  readonly recorded?: Metrics & { ageInterval?: IntervalEvaluation }
  readonly calibrated?: RunAgeInterval
  /** Keys (in the model folder) that `calibrate` rewrote. */
  readonly wrote: string[]
}

export async function evaluateRun(options: EvaluateRunOptions): Promise<EvaluateRunResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const root = new FolderStore(options.modelDir)
  const prefix = await modelPrefixIn(root)
  // a training output folder and a promoted copy (models/<runId>/) both keep the run's metrics.json at their root
  const run = await getJson(root, 'metrics.json', TrainMetrics)
  const { model, meta } = await loadInferenceModel(root, prefix)
  try {
    const loaded = await loadDatasetForTraining({ path: options.data }, log)
    // the run's own subset when it trained on --max-images, so the figures are comparable
    const maxImages = run?.config?.maxImages
    if (maxImages !== undefined) log(`the run used --max-images ${maxImages}: evaluating the same subset`)
    const items = subsample(loaded.items, maxImages)
    const wanted = new Set<Split>(options.split === 'all' ? ['train', 'val', 'test'] : [options.split])
    if (options.calibrate) wanted.add('val').add('test')
    const chosen = items.filter((i) => wanted.has(i.split))
    const { splits: samples, failures } = await decodeSplits(chosen, meta.inputSize, {
      write: log,
      ...(options.tty === undefined ? {} : { tty: options.tty }),
    })
    const predictor = new Predictor(model, meta)
    const batchSize = run?.config?.evalBatchSize ?? 64
    const inSplit =
      options.split === 'all' ? [...samples.train, ...samples.val, ...samples.test] : samples[options.split]
    const result = await evaluate(predictor, inSplit, batchSize)
    const unreadable = failures.filter(
      (f) => options.split === 'all' || chosen[f.index]!.split === options.split
    ).length

    const wrote: string[] = []
    let calibrated: RunAgeInterval | undefined
    let calibration = meta.ageInterval
    if (options.calibrate) {
      const predictionsOf = async (split: 'val' | 'test'): Promise<Prediction[]> =>
        split === options.split
          ? result.predictions
          : (await evaluate(predictor, samples[split], batchSize)).predictions
      const [val, test] = [await predictionsOf('val'), await predictionsOf('test')]
      calibrated = calibrateRun(val, test.length ? test : null, log, options.level) ?? undefined
      if (!calibrated) throw new Error('cannot calibrate: the validation split is too small')
      calibration = calibrated.calibration
      wrote.push(...(await writeCalibration(root, prefix, calibrated, run, test)))
    }
    const recorded =
      options.split === 'test' || options.split === 'val' ? (run?.[options.split] ?? undefined) : undefined
    return {
      split: options.split,
      metrics: result.metrics,
      unreadable,
      imagesPerSecond: result.imagesPerSecond,
      ...(calibration
        ? { ageInterval: evaluateAgeInterval(calibration, toCalibrationSamples(result.predictions)) }
        : {}),
      ...(recorded ? { recorded } : {}),
      ...(calibrated ? { calibrated } : {}),
      wrote,
    }
  } finally {
    model.dispose()
  }
}

/** meta.json always; metrics.json and report.html of a training output folder when they are there. */
async function writeCalibration(
  root: FolderStore,
  prefix: string,
  calibrated: RunAgeInterval,
  run: TrainMetrics | undefined,
  testPredictions: readonly Prediction[]
): Promise<string[]> {
  const wrote: string[] = []
  const metaKey = `${prefix}meta.json`
  const meta = await getJson(root, metaKey, ModelMeta)
  if (!meta) throw new Error(`no ${metaKey} in ${root.location}`)
  const summary =
    meta.summary && calibrated.test
      ? {
          ...meta.summary,
          testAgeRangeCoverage: calibrated.test.coverage,
          testAgeRangeWidth: calibrated.test.meanWidth,
        }
      : meta.summary
  await putJson(root, metaKey, { ...meta, ...(summary ? { summary } : {}), ageInterval: calibrated.calibration })
  wrote.push(metaKey)
  if (run) {
    const updated: TrainMetrics = {
      ...run,
      ageInterval: calibrated.calibration,
      test: run.test && calibrated.test ? { ...run.test, ageInterval: calibrated.test } : run.test,
    }
    await putJson(root, 'metrics.json', updated)
    wrote.push('metrics.json')
    if (await root.get('report.html')) {
      await root.put('report.html', renderReport(updated, testPredictions), { contentType: 'text/html; charset=utf-8' })
      wrote.push('report.html')
    }
  }
  return wrote
}
