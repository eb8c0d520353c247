import { describe, expect, it } from 'vitest'
import {
  AgeIntervalCalibration,
  ageRange,
  CalibrationError,
  calibrateAgeInterval,
  evaluateAgeInterval,
  minSamplesFor,
  type CalibrationSample,
} from '../../core/age-interval.js'
import { createRng } from '../../core/random.js'

/**
 * Synthetic predictions whose errors look like an age model's: they grow with age and are skewed (old faces are
 * predicted too young, so the truth lies mostly above the prediction).
 */
function synthetic(n: number, seed: number): CalibrationSample[] {
  const rng = createRng(seed)
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next())
  return Array.from({ length: n }, () => {
    const predicted = rng.uniform(1, 80)
    const spread = 1 + predicted * 0.12
    const bias = predicted > 50 ? (predicted - 50) * 0.2 : 0
    return { predicted, actual: Math.max(0, predicted + bias + spread * normal()) }
  })
}

const width = (c: AgeIntervalCalibration) => c.bands.map((b) => b.below + b.above)

describe('calibrateAgeInterval', () => {
  it('covers the nominal share of fresh samples from the same distribution, overall and per band', () => {
    // Prepare
    const calibration = calibrateAgeInterval(synthetic(3000, 1), 0.9)
    // Act
    const fresh = evaluateAgeInterval(calibration, synthetic(20000, 2))
    // Assess
    expect(AgeIntervalCalibration.parse(JSON.parse(JSON.stringify(calibration)))).toEqual(calibration)
    expect(calibration.bands.length).toBeGreaterThan(5)
    expect(fresh.coverage).toBeGreaterThan(0.88)
    expect(fresh.coverage).toBeLessThan(0.93)
    for (const [band, g] of Object.entries(fresh.byPredictedBand)) {
      expect(g.coverage, band).toBeGreaterThan(0.83)
      expect(g.coverage, band).toBeLessThan(0.97)
    }
    // errors grow with age, so do the calibrated ranges
    expect(width(calibration).at(-1)!).toBeGreaterThan(2 * width(calibration)[0]!)
  })

  it('centres the range where the residuals are skewed, and is narrower than ± for the same coverage', () => {
    // Prepare: the truth is 5 years above the prediction, give or take 2
    const rng = createRng(5)
    const skewed = (n: number) =>
      Array.from({ length: n }, () => {
        const predicted = rng.uniform(30, 40)
        return { predicted, actual: predicted + 5 + (rng.next() - 0.5) * 4 }
      })
    // Act
    const calibration = calibrateAgeInterval(skewed(500), 0.9, { edges: [0] })
    const fresh = evaluateAgeInterval(calibration, skewed(5000))
    // Assess: ± around the prediction would need about 6.8 years each side
    const [band] = calibration.bands
    expect(band!.shape).not.toBe('symmetric')
    expect(band!.below).toBe(0)
    expect(band!.above).toBeGreaterThan(6.5)
    expect(band!.above).toBeLessThan(7.2)
    expect(fresh.coverage).toBeGreaterThan(0.87)
    expect(fresh.meanWidth).toBeLessThan(7.2)
  })

  it('widens monotonically with the level, and covers more', () => {
    const calibrationSet = synthetic(3000, 3)
    const fresh = synthetic(5000, 4)
    const levels = [0.5, 0.8, 0.9, 0.95]
    const calibrations = levels.map((l) => calibrateAgeInterval(calibrationSet, l))
    const coverages = calibrations.map((c) => evaluateAgeInterval(c, fresh).coverage)
    for (let i = 1; i < levels.length; i++) {
      const [prev, cur] = [width(calibrations[i - 1]!), width(calibrations[i]!)]
      expect(cur).toHaveLength(prev.length)
      cur.forEach((w, b) => {
        expect(w).toBeGreaterThanOrEqual(prev[b]!)
      })
      expect(coverages[i]!).toBeGreaterThan(coverages[i - 1]!)
    }
    levels.forEach((l, i) => {
      expect(Math.abs(coverages[i]! - l)).toBeLessThan(0.03)
    })
  })

  it('merges bands with too few samples into a neighbour, keeping the bands contiguous', () => {
    // Prepare: nearly everything predicted 20-40, a handful of children and of old people
    const rng = createRng(9)
    const samples: CalibrationSample[] = [
      ...Array.from({ length: 400 }, () => ({ predicted: rng.uniform(20, 40), actual: rng.uniform(15, 45) })),
      ...[2, 3, 4].map((a) => ({ predicted: a, actual: a + 1 })),
      ...[75, 80].map((a) => ({ predicted: a, actual: a - 3 })),
    ]
    // Act
    const { bands } = calibrateAgeInterval(samples, 0.9, { minBandCount: 50 })
    // Assess
    expect(bands[0]!.from).toBe(0)
    expect(bands.at(-1)!.to).toBeNull()
    for (let i = 1; i < bands.length; i++) expect(bands[i]!.from).toBe(bands[i - 1]!.to)
    for (const b of bands) expect(b.count).toBeGreaterThanOrEqual(50)
    expect(bands.reduce((s, b) => s + b.count, 0)).toBe(samples.length)
    // the two old people were merged into the 35-40 band rather than getting a band of their own
    expect(ageRange({ level: 0.9, method: 'split-conformal', bands }, 80).high).toBeLessThan(80 + 30)
  })

  it('uses the finite-sample rank: with the fewest samples allowed, the range reaches the largest error', () => {
    const n = minSamplesFor(0.9)
    expect(n).toBe(9)
    const samples = Array.from({ length: n }, (_, i) => ({ predicted: 30, actual: 30 + (i - 4) }))
    const c = calibrateAgeInterval(samples, 0.9)
    expect(c.bands).toHaveLength(1)
    expect(c.bands[0]!.below + c.bands[0]!.above).toBeGreaterThanOrEqual(8)
    expect(() => calibrateAgeInterval(samples.slice(1), 0.9)).toThrow(CalibrationError)
  })

  it('handles exact predictions, NaN, bad levels and ages below every band', () => {
    const exact = Array.from({ length: 20 }, (_, i) => ({ predicted: i * 3, actual: i * 3 }))
    const c = calibrateAgeInterval([...exact, { predicted: NaN, actual: 3 }], 0.9, { minBandCount: 1 })
    expect(c.bands.every((b) => b.below === 0 && b.above === 0)).toBe(true)
    expect(c.bands.reduce((s, b) => s + b.count, 0)).toBe(20)
    expect(() => calibrateAgeInterval(exact, 1)).toThrow(RangeError)
    expect(() => calibrateAgeInterval(exact, 0)).toThrow(RangeError)
    const wide = calibrateAgeInterval(synthetic(500, 6), 0.9)
    const r = ageRange(wide, -2)
    expect(r.low).toBe(0)
    expect(r.high).toBeGreaterThan(-2)
  })
})

describe('evaluateAgeInterval', () => {
  it('counts a true age inside the range, edges included, and measures the clipped width', () => {
    const calibration: AgeIntervalCalibration = {
      level: 0.9,
      method: 'split-conformal',
      bands: [
        { from: 0, to: 20, below: 2, above: 3, count: 10 },
        { from: 20, to: null, below: 5, above: 5, count: 10 },
      ],
    }
    const e = evaluateAgeInterval(calibration, [
      { predicted: 1, actual: 4 }, // [0, 4]: inside at the edge, width 4
      { predicted: 10, actual: 14 }, // [8, 13]: outside
      { predicted: 30, actual: 25 }, // [25, 35]: inside, width 10
      { predicted: 30, actual: 36 }, // outside
    ])
    expect(e.count).toBe(4)
    expect(e.coverage).toBe(0.5)
    expect(e.meanWidth).toBeCloseTo((4 + 5 + 10 + 10) / 4)
    expect(e.byPredictedBand).toEqual({
      '0-20': { count: 2, coverage: 0.5, meanWidth: 4.5 },
      '20+': { count: 2, coverage: 0.5, meanWidth: 10 },
    })
    expect(Object.keys(e.byAgeBand)).toEqual(['0-9', '10-19', '20-29', '30-39'])
  })
})
