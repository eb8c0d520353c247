/**
 * Runs a model over labelled, decoded images and computes {@link Metrics}.
 * @module
 */
import { computeMetrics, type Metrics, type Prediction } from '../core/metrics.js'
import type { Predictor } from '../core/predictor.js'

export interface Sample {
  /** Decoded RGB `[size, size, 3]`. */
  readonly pixels: Uint8Array
  readonly age: number
  readonly gender: 0 | 1
  readonly race?: number
}

export interface Evaluation {
  readonly metrics: Metrics
  readonly predictions: Prediction[]
  readonly imagesPerSecond: number
}

export async function evaluate(predictor: Predictor, samples: readonly Sample[], batchSize = 64): Promise<Evaluation> {
  const start = performance.now()
  const out = await predictor.predictDecoded(
    samples.map((s) => s.pixels),
    batchSize
  )
  const seconds = (performance.now() - start) / 1000
  const predictions: Prediction[] = samples.map((s, i) => ({
    age: s.age,
    gender: s.gender,
    ...(s.race === undefined ? {} : { race: s.race }),
    predictedAge: out[i]!.age,
    genderProbability: out[i]!.genderProbability,
  }))
  return {
    metrics: computeMetrics(predictions),
    predictions,
    imagesPerSecond: samples.length / Math.max(seconds, 1e-9),
  }
}
