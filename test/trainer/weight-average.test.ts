/** The exponential moving average of the weights: update rule, swapping in and out, checkpoint round trip. */
import * as tf from '@tensorflow/tfjs'
import { beforeAll, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { createModel } from '../../core/model.js'
import { WeightAverage } from '../../trainer/weight-average.js'

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
})

const values = (model: tf.LayersModel) => model.weights.map((w) => Array.from(w.read().dataSync()))
/** Adds `delta` to every weight of the model, as a stand-in for an optimizer step. */
const shift = (model: tf.LayersModel, delta: number) =>
  tf.tidy(() => {
    for (const w of model.weights) w.write(tf.add(w.read(), delta))
  })

it('moves each average by (1 - d) of the gap, with the warm-up decay min(decay, (1 + step) / (10 + step))', () => {
  const model = createModel({ inputSize: 32, width: 4, seed: 1 })
  const average = new WeightAverage(model, 0.99)
  expect(average.decayAt(0)).toBeCloseTo(0.1, 10)
  expect(average.decayAt(10_000)).toBe(0.99)
  const start = values(model)
  shift(model, 1)
  average.update(0) // d = 0.1: the average moves 0.9 of the way
  average.swap()
  const averaged = values(model)
  const gap = (now: number[][], offset: number) =>
    Math.max(...now.flatMap((w, i) => w.map((v, j) => Math.abs(v - (start[i]![j]! + offset)))))
  expect(gap(averaged, 0.9)).toBeLessThan(1e-4)
  // swapping back restores the raw weights exactly
  average.swap()
  expect(gap(values(model), 1)).toBeLessThan(1e-5)
  average.dispose()
  model.dispose()
})

it('runs a function with the averages in and puts the raw weights back even when it throws', async () => {
  const model = createModel({ inputSize: 32, width: 4, seed: 2 })
  const average = new WeightAverage(model, 0.5)
  const raw = values(model)
  shift(model, 2)
  const shifted = values(model)
  await expect(
    average.withAverages(async () => {
      expect(values(model)).toEqual(raw) // no update yet: the averages are the starting weights
      throw new Error('boom')
    })
  ).rejects.toThrow('boom')
  expect(values(model)).toEqual(shifted)
  average.dispose()
  model.dispose()
})

it('restores averages saved as named tensors, and refuses a checkpoint without them', () => {
  const model = createModel({ inputSize: 32, width: 4, seed: 3 })
  const first = new WeightAverage(model, 0.9)
  shift(model, 1)
  first.update(100)
  const saved = Object.fromEntries(first.named().map((n) => [n.name, n.tensor.clone()]))
  const second = new WeightAverage(model, 0.9)
  second.restore(saved)
  first.swap()
  const a = values(model)
  first.swap()
  second.swap()
  expect(values(model)).toEqual(a)
  second.swap()
  expect(() => second.restore({})).toThrow(/no average for/)
  expect(() => new WeightAverage(model, 1)).toThrow(/decay/)
  tf.dispose(Object.values(saved))
  first.dispose()
  second.dispose()
  model.dispose()
})
