/**
 * A complete, valid `metrics.json` for tests that read one back (the CLI, the predict API), with the parts a
 * test cares about overridden.
 * @module
 */
import type { GroupMetrics, Metrics } from '../../core/metrics.js'
import type { TrainMetrics } from '../../core/train-documents.js'

export const group = (over: Partial<GroupMetrics> = {}): GroupMetrics => ({
  count: 10,
  ageMae: 7.5,
  ageRmse: 9.1,
  cs5: 0.4,
  genderAccuracy: 0.8,
  genderMae: 0.3,
  ...over,
})

export const metricsOf = (over: Partial<Metrics> = {}): Metrics => ({
  ...group(),
  byAgeBand: {},
  byGender: {},
  byRace: {},
  ...over,
})

const epoch = (n: number) => ({
  epoch: n,
  learningRate: 0.001,
  trainLoss: 10,
  trainAgeMae: 9,
  trainGenderLoss: 0.5,
  valAgeMae: 8,
  valGenderAccuracy: 0.8,
  seconds: 30,
  imagesPerSecond: 100,
})

export function metricsDocument(over: Partial<TrainMetrics> & { epochs?: number } = {}): TrainMetrics {
  const { epochs = 3, ...rest } = over
  return {
    schemaVersion: 1,
    createdAt: '2026-11-20T09:00:00.000Z',
    test: metricsOf(),
    val: metricsOf(),
    bestEpoch: epochs,
    baselines: { medianAge: 30, medianAgeMae: 15, majorityGender: 'male', majorityGenderAccuracy: 0.52 },
    history: Array.from({ length: epochs }, (_, i) => epoch(i + 1)),
    throughput: { trainImagesPerSecond: 100, evalImagesPerSecond: 300 },
    backend: { name: 'wasm', description: 'wasm (test)' },
    dataset: { source: 'data', counts: { train: 80, val: 10, test: 10 }, skipped: {}, decodeFailures: 0 },
    config: { epochs, imageSize: 64, batchSize: 32 },
    timings: { totalSeconds: 95 },
    ...rest,
  }
}
