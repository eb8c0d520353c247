/**
 * Calibrated age ranges: how far the true age may lie from the predicted one, at a stated coverage.
 *
 * The calibration is split-conformal, made once when training on the validation split and stored in the model's
 * `meta.json` ({@link AgeIntervalCalibration}). Bands are on the *predicted* age (the only age known when
 * serving), each with the offsets below and above the prediction that covered `level` of the validation images
 * whose prediction fell in that band. {@link ageRange} turns a prediction into a range,
 * {@link calibrateAgeInterval} computes the calibration and {@link evaluateAgeInterval} measures its coverage and
 * width on other images (the test split).
 * @module
 */
import { z } from 'zod'
import { AGE_BANDS, ageBand } from './metrics.js'

export const AgeIntervalBand = z.object({
  /** Predicted ages in `[from, to)`; `to: null` is open-ended. */
  from: z.number(),
  to: z.number().nullable(),
  /** Validation images the offsets were computed from. */
  count: z.number().int().min(0),
  /** Years below the prediction the range starts. */
  below: z.number().min(0),
  /** Years above the prediction the range ends. */
  above: z.number().min(0),
  /** Which interval shape was narrowest on this band ({@link INTERVAL_SHAPES}); absent in hand-made calibrations. */
  shape: z.enum(['symmetric', 'shifted', 'equal-tails']).optional(),
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

/**
 * The interval shapes compared on each band, all split-conformal with the finite-sample correction
 * (`k = ⌈(n + 1)·level⌉`-th smallest score of `n`), residual `r = actual − predicted`:
 * - `symmetric`: ± the k-th smallest |r|;
 * - `shifted`: centred on the band's median residual c (models pull extreme ages toward the middle), ± the k-th
 *   smallest |r − c|;
 * - `equal-tails`: the ⌈(n + 1)(1 − α/2)⌉-th smallest of −r below and of r above (α = 1 − level).
 */
export const INTERVAL_SHAPES = ['symmetric', 'shifted', 'equal-tails'] as const

/** The nominal coverage the trainer calibrates for. */
export const DEFAULT_AGE_INTERVAL_LEVEL = 0.9

/** Predicted-age band edges tried first; neighbours are merged until each band has enough images. */
export const DEFAULT_BAND_EDGES: readonly number[] = [0, 5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 70]

export interface CalibrationSample {
  readonly predicted: number
  readonly actual: number
}

export interface CalibrateOptions {
  /** Ascending lower edges of the predicted-age bands; the last band is open-ended. @default DEFAULT_BAND_EDGES */
  readonly edges?: readonly number[]
  /**
   * Fewest images a band may hold; smaller bands are merged with a neighbour. Never below the
   * `level / (1 − level)` images the finite-sample quantile needs (9 at 0.9). @default 100
   */
  readonly minBandCount?: number
}

/** Too few samples to calibrate at the asked level. */
export class CalibrationError extends Error {
  override readonly name = 'CalibrationError'
}

/** The fewest samples a split-conformal quantile at `level` needs (its rank ⌈(n + 1)·level⌉ must be ≤ n). */
export function minSamplesFor(level: number): number {
  return Math.ceil(level / (1 - level) - 1e-9)
}

/** k-th smallest (1-based) of `values`. */
function kth(values: readonly number[], k: number): number {
  return [...values].sort((a, b) => a - b)[k - 1]!
}

/** Rounded up to 0.01 year, so rounding never loses coverage. */
const up = (v: number) => Math.ceil(Math.max(0, v) * 100 - 1e-6) / 100 + 0 // + 0 turns -0 into 0

/** The narrowest split-conformal offsets for the residuals of one band. */
function bandOffsets(residuals: readonly number[], level: number): Pick<AgeIntervalBand, 'below' | 'above' | 'shape'> {
  const n = residuals.length
  const k = Math.ceil((n + 1) * level - 1e-9)
  const candidates: Array<Pick<AgeIntervalBand, 'below' | 'above' | 'shape'>> = []
  const q = kth(residuals.map(Math.abs), k)
  candidates.push({ below: up(q), above: up(q), shape: 'symmetric' })
  const c = kth(residuals, Math.ceil(n / 2))
  const qc = kth(
    residuals.map((r) => Math.abs(r - c)),
    k
  )
  candidates.push({ below: up(qc - c), above: up(qc + c), shape: 'shifted' })
  const kt = Math.ceil((n + 1) * (1 - (1 - level) / 2) - 1e-9)
  if (kt <= n) {
    candidates.push({
      below: up(
        kth(
          residuals.map((r) => -r),
          kt
        )
      ),
      above: up(kth(residuals, kt)),
      shape: 'equal-tails',
    })
  }
  return candidates.reduce((best, x) => (x.below + x.above < best.below + best.above ? x : best))
}

/**
 * Split-conformal age ranges from held-out predictions (the validation split, predicted exactly as served).
 *
 * Samples are grouped by predicted age into bands ({@link CalibrateOptions.edges}, merged until each holds
 * `minBandCount`); in each band every shape of {@link INTERVAL_SHAPES} gets the offsets its conformal quantile gives,
 * which cover `level` of new images from the same distribution, and the narrowest is kept. (Choosing among three
 * shapes on the same data is a small departure from the exact guarantee; the coverage measured on the test split
 * is what to trust.)
 * @throws CalibrationError with fewer than {@link minSamplesFor}(level) samples.
 */
export function calibrateAgeInterval(
  samples: readonly CalibrationSample[],
  level = DEFAULT_AGE_INTERVAL_LEVEL,
  options: CalibrateOptions = {}
): AgeIntervalCalibration {
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be between 0 and 1, got ${level}`)
  const finite = samples.filter((s) => Number.isFinite(s.predicted) && Number.isFinite(s.actual))
  const needed = minSamplesFor(level)
  if (finite.length < needed) {
    throw new CalibrationError(
      `calibrating a ${level} age range needs at least ${needed} predictions, got ${finite.length}`
    )
  }
  const minCount = Math.max(options.minBandCount ?? 100, needed)
  const edges = [...(options.edges ?? DEFAULT_BAND_EDGES)]
  if (edges.some((e, i) => i > 0 && e <= edges[i - 1]!)) throw new RangeError('band edges must be strictly ascending')
  // start with one group per band, then merge any group under minCount into its smaller neighbour
  const groups = edges.map((from, i) => ({
    from,
    to: i + 1 < edges.length ? edges[i + 1]! : null,
    residuals: [] as number[],
  }))
  for (const s of finite) {
    let i = groups.findIndex((g) => g.to === null || s.predicted < g.to)
    if (i < 0) i = groups.length - 1
    groups[i]!.residuals.push(s.actual - s.predicted)
  }
  for (;;) {
    const small = groups.findIndex((g) => g.residuals.length < minCount)
    if (small < 0 || groups.length === 1) break
    const left = groups[small - 1]
    const right = groups[small + 1]
    const into = !right || (left && left.residuals.length <= right.residuals.length) ? small - 1 : small + 1
    const [a, b] = into < small ? [into, small] : [small, into]
    const merged = {
      from: groups[a]!.from,
      to: groups[b]!.to,
      residuals: [...groups[a]!.residuals, ...groups[b]!.residuals],
    }
    groups.splice(a, 2, merged)
  }
  return {
    level,
    method: 'split-conformal',
    bands: groups.map((g) => ({
      from: g.from,
      to: g.to,
      count: g.residuals.length,
      ...bandOffsets(g.residuals, level),
    })),
  }
}

export const IntervalGroup = z.object({
  count: z.number(),
  /** Share of true ages inside the range. */
  coverage: z.number(),
  /** Mean of `high − low` in years, after the range is clipped at 0. */
  meanWidth: z.number(),
})
export type IntervalGroup = z.infer<typeof IntervalGroup>

/** Stored in `metrics.json` as the test split's `ageInterval`. */
export const IntervalEvaluation = z.object({
  /** Nominal coverage. */
  level: z.number(),
  ...IntervalGroup.shape,
  /** By true age, in the ten-year bands of the other metrics. */
  byAgeBand: z.record(z.string(), IntervalGroup),
  /** By the calibration's predicted-age bands (the groups the offsets were fitted on). */
  byPredictedBand: z.record(z.string(), IntervalGroup),
})
export type IntervalEvaluation = z.infer<typeof IntervalEvaluation>

export const bandLabel = (b: Pick<AgeIntervalBand, 'from' | 'to'>) =>
  b.to === null ? `${b.from}+` : `${b.from}-${b.to}`

function intervalGroup(hits: readonly { inside: boolean; width: number }[]): IntervalGroup {
  const n = hits.length
  return {
    count: n,
    coverage: n ? hits.filter((h) => h.inside).length / n : NaN,
    meanWidth: n ? hits.reduce((s, h) => s + h.width, 0) / n : NaN,
  }
}

/** Coverage and width of a calibration's ranges on other predictions (the test split). */
export function evaluateAgeInterval(
  calibration: AgeIntervalCalibration,
  samples: readonly CalibrationSample[]
): IntervalEvaluation {
  const rows = samples.map((s) => {
    const r = ageRange(calibration, s.predicted)
    return {
      s,
      inside: s.actual >= r.low && s.actual <= r.high,
      width: r.high - r.low,
      band: bandLabel(bandFor(calibration, s.predicted)),
    }
  })
  const by = (key: (row: (typeof rows)[number]) => string, order: readonly string[]) => {
    const groups = new Map<string, typeof rows>(order.map((k) => [k, []]))
    for (const row of rows) {
      const k = key(row)
      const group = groups.get(k)
      if (group) group.push(row)
      else groups.set(k, [row])
    }
    return Object.fromEntries([...groups].filter(([, v]) => v.length).map(([k, v]) => [k, intervalGroup(v)]))
  }
  return {
    level: calibration.level,
    ...intervalGroup(rows),
    byAgeBand: by((row) => ageBand(row.s.actual), AGE_BANDS),
    byPredictedBand: by((row) => row.band, calibration.bands.map(bandLabel)),
  }
}
