import { describe, expect, it } from 'vitest'
import { ageBand, baselines, computeMetrics, type Prediction } from '../../core/metrics.js'

const p = (age: number, predictedAge: number, gender: 0 | 1, genderProbability: number, race?: number): Prediction => ({
  age,
  predictedAge,
  gender,
  genderProbability,
  ...(race === undefined ? {} : { race }),
})

describe('metrics', () => {
  it('computes MAE, RMSE, CS@5, gender accuracy and gender MAE', () => {
    const m = computeMetrics([p(20, 23, 0, 0.2, 0), p(40, 30, 1, 0.9, 1), p(5, 5, 1, 0.4, 0), p(70, 76, 0, 0.6)])
    expect(m.count).toBe(4)
    expect(m.ageMae).toBeCloseTo((3 + 10 + 0 + 6) / 4)
    expect(m.ageRmse).toBeCloseTo(Math.sqrt((9 + 100 + 0 + 36) / 4))
    expect(m.cs5).toBeCloseTo(2 / 4)
    expect(m.genderAccuracy).toBeCloseTo(2 / 4)
    expect(m.genderMae).toBeCloseTo((0.2 + 0.1 + 0.6 + 0.6) / 4)
    expect(Object.keys(m.byAgeBand)).toEqual(['0-9', '20-29', '40-49', '70+'])
    expect(m.byGender.female!.count).toBe(2)
    expect(m.byRace.white!.count).toBe(2)
    expect(m.byRace.other).toBeUndefined()
  })

  it('puts ages in ten-year bands with an open last band', () => {
    expect([0, 9, 10, 69, 70, 116].map(ageBand)).toEqual(['0-9', '0-9', '10-19', '60-69', '70+', '70+'])
  })

  it('reports the trivial baselines', () => {
    const b = baselines([10, 20, 30, 40, 50], [1, 1, 0, 1, 0], [p(30, 0, 1, 0), p(60, 0, 0, 0)])
    expect(b.medianAge).toBe(30)
    expect(b.medianAgeMae).toBe(15)
    expect(b.majorityGender).toBe('female')
    expect(b.majorityGenderAccuracy).toBe(0.5)
  })

  it('returns NaN figures for an empty group rather than dividing by zero silently', () => {
    expect(computeMetrics([]).ageMae).toBeNaN()
  })
})
