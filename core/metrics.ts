/**
 * Evaluation metrics: pure functions over predictions and labels.
 *
 * - age MAE, RMSE (years); CS@5: share of predictions within 5 years of the label.
 * - gender accuracy (p ≥ 0.5 means female) and gender MAE, mean |p - label| (the seed project's figure).
 * - the same age and gender figures by age band, by gender and by race group where races are known.
 *
 * The figures are stored in `metrics.json` (see `train-documents.ts`): {@link GroupMetrics}, {@link Metrics} and
 * {@link Baselines} are its parts, as zod schemas with their types.
 * @module
 */
import { z } from 'zod'

export interface Prediction {
  readonly age: number
  /** Label: 0 male, 1 female. */
  readonly gender: 0 | 1
  readonly race?: number
  readonly predictedAge: number
  /** Predicted probability of female. */
  readonly genderProbability: number
}

/** Ten-year bands, `70+` last: wide enough to hold a few hundred test images each on UTKFace. */
export const AGE_BANDS = ['0-9', '10-19', '20-29', '30-39', '40-49', '50-59', '60-69', '70+'] as const
export const GENDER_NAMES = ['male', 'female'] as const

export const GroupMetrics = z.object({
  count: z.number(),
  ageMae: z.number(),
  ageRmse: z.number(),
  cs5: z.number(),
  genderAccuracy: z.number(),
  genderMae: z.number(),
})
export type GroupMetrics = z.infer<typeof GroupMetrics>

export const Metrics = GroupMetrics.extend({
  byAgeBand: z.record(z.string(), GroupMetrics),
  byGender: z.record(z.string(), GroupMetrics),
  byRace: z.record(z.string(), GroupMetrics),
})
export type Metrics = z.infer<typeof Metrics>

/** The trivial baselines: the training median age and the majority gender, scored on the test split. */
export const Baselines = z.object({
  medianAge: z.number(),
  medianAgeMae: z.number(),
  majorityGender: z.enum(GENDER_NAMES),
  majorityGenderAccuracy: z.number(),
})
export type Baselines = z.infer<typeof Baselines>
export const RACE_NAMES = ['white', 'black', 'asian', 'indian', 'other'] as const

export function ageBand(age: number): string {
  return AGE_BANDS[Math.min(Math.floor(Math.max(age, 0) / 10), AGE_BANDS.length - 1)]!
}

export function groupMetrics(preds: readonly Prediction[]): GroupMetrics {
  const n = preds.length
  if (n === 0) return { count: 0, ageMae: NaN, ageRmse: NaN, cs5: NaN, genderAccuracy: NaN, genderMae: NaN }
  let abs = 0
  let sq = 0
  let within5 = 0
  let correct = 0
  let gAbs = 0
  for (const p of preds) {
    const e = Math.abs(p.predictedAge - p.age)
    abs += e
    sq += e * e
    if (e <= 5) within5++
    if ((p.genderProbability >= 0.5 ? 1 : 0) === p.gender) correct++
    gAbs += Math.abs(p.genderProbability - p.gender)
  }
  return {
    count: n,
    ageMae: abs / n,
    ageRmse: Math.sqrt(sq / n),
    cs5: within5 / n,
    genderAccuracy: correct / n,
    genderMae: gAbs / n,
  }
}

function groupBy(preds: readonly Prediction[], key: (p: Prediction) => string | undefined, order: readonly string[]) {
  const groups = new Map<string, Prediction[]>(order.map((k) => [k, []]))
  for (const p of preds) {
    const k = key(p)
    if (k !== undefined) groups.get(k)?.push(p)
  }
  return Object.fromEntries([...groups].filter(([, v]) => v.length > 0).map(([k, v]) => [k, groupMetrics(v)]))
}

export function computeMetrics(preds: readonly Prediction[]): Metrics {
  return {
    ...groupMetrics(preds),
    byAgeBand: groupBy(preds, (p) => ageBand(p.age), AGE_BANDS),
    byGender: groupBy(preds, (p) => GENDER_NAMES[p.gender], GENDER_NAMES),
    byRace: groupBy(preds, (p) => (p.race === undefined ? undefined : RACE_NAMES[p.race]), RACE_NAMES),
  }
}

/** The headline test figures stored in model meta, run status and the promotion: `testAgeMae`, ... */
export function testSummary(test: GroupMetrics | null | undefined): Record<string, number> | undefined {
  if (!test) return undefined
  return {
    testAgeMae: test.ageMae,
    testAgeRmse: test.ageRmse,
    testCs5: test.cs5,
    testGenderAccuracy: test.genderAccuracy,
    testGenderMae: test.genderMae,
  }
}

/** The trivial baselines every report shows beside the model: predict the training median age, the majority gender. */
export function baselines(
  trainAges: readonly number[],
  trainGenders: readonly number[],
  test: readonly Prediction[]
): Baselines {
  const sorted = [...trainAges].sort((a, b) => a - b)
  const median = sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : 0
  const females = trainGenders.filter((g) => g === 1).length
  const majority: 0 | 1 = females * 2 > trainGenders.length ? 1 : 0
  const n = test.length || 1
  return {
    medianAge: median,
    medianAgeMae: test.reduce((s, p) => s + Math.abs(p.age - median), 0) / n,
    majorityGender: GENDER_NAMES[majority],
    majorityGenderAccuracy: test.filter((p) => p.gender === majority).length / n,
  }
}
