/**
 * Calibrated age ranges: how far the true age may lie from the predicted one, at a stated coverage.
 *
 * The calibration is split-conformal, made once when training on the validation split and stored in the model's
 * `meta.json` ({@link AgeIntervalCalibration}). Bands are on the *predicted* age (the only age known when
 * serving), each with the offsets below and above the prediction that covered `level` of the validation images
 * whose prediction fell in that band. {@link ageRange} turns a prediction into a range; the calibration itself is
 * computed by `calibrateAgeInterval` (trainer side).
 * @module
 */
import { z } from 'zod'

export const AgeIntervalBand = z.object({
  /** Predicted ages in `[from, to)`; `to: null` is open-ended. */
  from: z.number(),
  to: z.number().nullable(),
  /** Years below the prediction the range starts. */
  below: z.number().min(0),
  /** Years above the prediction the range ends. */
  above: z.number().min(0),
  /** Validation images the offsets were computed from. */
  count: z.number().int().min(0),
})
export type AgeIntervalBand = z.infer<typeof AgeIntervalBand>

export const AgeIntervalCalibration = z.object({
  /** Nominal coverage, e.g. 0.9. */
  level: z.number().gt(0).lt(1),
  method: z.literal('split-conformal'),
  bands: z.array(AgeIntervalBand).min(1),
})
export type AgeIntervalCalibration = z.infer<typeof AgeIntervalCalibration>

export interface AgeRange {
  /** Years, never below 0. */
  readonly low: number
  readonly high: number
  /** Nominal coverage of the range, e.g. 0.9. */
  readonly level: number
}

/** The band whose `[from, to)` holds `age`; ages outside every band take the nearest one. */
export function bandFor(calibration: AgeIntervalCalibration, age: number): AgeIntervalBand {
  const { bands } = calibration
  const inside = bands.find((b) => age >= b.from && (b.to === null || age < b.to))
  if (inside) return inside
  return age < bands[0]!.from ? bands[0]! : bands[bands.length - 1]!
}

/** The calibrated range around a predicted age. */
export function ageRange(calibration: AgeIntervalCalibration, age: number): AgeRange {
  const band = bandFor(calibration, age)
  return { low: Math.max(0, age - band.below), high: age + band.above, level: calibration.level }
}
