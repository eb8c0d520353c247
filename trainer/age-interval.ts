/**
 * A run's calibrated age ranges: split-conformal on the validation split, measured on the test split (see
 * {@link ../core/age-interval.ts}). Predictions come from the served model with test-time flip, exactly as the
 * predict API computes them.
 * @module
 */
import {
  calibrateAgeInterval,
  CalibrationError,
  DEFAULT_AGE_INTERVAL_LEVEL,
  evaluateAgeInterval,
  type AgeIntervalCalibration,
  type CalibrationSample,
  type IntervalEvaluation,
} from '../core/age-interval.js'
import type { Prediction } from '../core/metrics.js'

export interface RunAgeInterval {
  readonly calibration: AgeIntervalCalibration
  /** On the validation split the offsets were fitted on (at least the level by construction, per band). */
  readonly val: IntervalEvaluation
  /** On the test split: the honest figure. */
  readonly test: IntervalEvaluation | null
}

export const toCalibrationSamples = (predictions: readonly Prediction[]): CalibrationSample[] =>
  predictions.map((p) => ({ predicted: p.predictedAge, actual: p.age }))

/**
 * @returns null (with the reason logged) when the validation split is too small to calibrate at `level`.
 */
export function calibrateRun(
  val: readonly Prediction[],
  test: readonly Prediction[] | null,
  log: (line: string) => void,
  level = DEFAULT_AGE_INTERVAL_LEVEL
): RunAgeInterval | null {
  let calibration: AgeIntervalCalibration
  try {
    calibration = calibrateAgeInterval(toCalibrationSamples(val), level)
  } catch (err) {
    if (!(err instanceof CalibrationError)) throw err
    log(`no calibrated age range: ${err.message}`)
    return null
  }
  const result = {
    calibration,
    val: evaluateAgeInterval(calibration, toCalibrationSamples(val)),
    test: test?.length ? evaluateAgeInterval(calibration, toCalibrationSamples(test)) : null,
  }
  log(describeRunInterval(result))
  return result
}

export function describeRunInterval(r: RunAgeInterval): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)} %`
  return (
    `age range ${pct(r.calibration.level)} (split-conformal on ${r.val.count} validation images, ${r.calibration.bands.length} predicted-age bands)` +
    (r.test ? `: test coverage ${pct(r.test.coverage)}, mean width ${r.test.meanWidth.toFixed(1)} years` : '')
  )
}
