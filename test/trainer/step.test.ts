/** The training step on the wasm engine with a tiny ResNet: learning, BatchNorm updates, no tensor leaks. */
import * as tf from '@tensorflow/tfjs'
import { beforeAll, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { AGE_BINS, createModel } from '../../core/model.js'
import {
  createTrainStep,
  createTrainStepTensors,
  LABEL_SIGMA,
  labelDistributionLoss,
  MEAN_VARIANCE_WEIGHTS,
  meanVarianceLoss,
} from '../../trainer/step.js'

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
})

function batch(n: number) {
  // Ages follow the mean brightness, gender its sign: learnable in a few steps.
  const x = tf.tidy(() => tf.randomNormal([n, 32, 32, 3], 0, 1, 'float32', 7)) as tf.Tensor4D
  const brightness = tf.tidy(() => tf.mean(x, [1, 2, 3]))
  const age = tf.tidy(() => tf.add(tf.mul(brightness, 40), 35)) as tf.Tensor1D
  const gender = tf.tidy(() => tf.cast(tf.greater(brightness, 0), 'float32'))
  brightness.dispose()
  return { x, age, gender }
}

it('lowers the loss over a few Adam steps, updates BatchNorm statistics and leaks no tensors', () => {
  const model = createModel({ inputSize: 32, width: 4, seed: 3, ageBias: 35 })
  const optimizer = tf.train.adam(0.01)
  const step = createTrainStep(model, optimizer, { genderWeight: 2 })
  const { x, age, gender } = batch(8)
  const movingMean = () => Array.from(model.getLayer('bn1').getWeights()[2]!.dataSync())
  const before = movingMean()

  const first = step(x, age, gender)
  expect(first.loss).toBeCloseTo(first.ageLoss + 2 * first.genderLoss, 4)
  expect(Number.isFinite(first.loss)).toBe(true)
  expect(movingMean()).not.toEqual(before)

  const tensors = tf.memory().numTensors
  let last = first
  for (let i = 0; i < 12; i++) last = step(x, age, gender)
  expect(tf.memory().numTensors).toBe(tensors)
  expect(last.loss).toBeLessThan(first.loss * 0.8)
  expect(last.ageLoss).toBeLessThan(first.ageLoss)

  tf.dispose([x, age, gender])
  model.dispose()
  optimizer.dispose()
})

it('returns the losses as one tensor for callers that read them rarely', () => {
  const model = createModel({ inputSize: 32, width: 4, seed: 5 })
  const optimizer = tf.train.sgd(0.01)
  const step = createTrainStepTensors(model, optimizer)
  const { x, age, gender } = batch(4)
  const age2d = tf.reshape(age, [4, 1]) as tf.Tensor2D
  step(x, age2d, gender).dispose()
  const tensors = tf.memory().numTensors
  const losses = step(x, age2d, gender)
  expect(losses.shape).toEqual([3])
  const [loss, ageLoss, genderLoss] = losses.dataSync()
  expect(loss).toBeCloseTo(ageLoss! + genderLoss!, 4)
  losses.dispose()
  expect(tf.memory().numTensors).toBe(tensors)
  tf.dispose([x, age, age2d, gender])
  model.dispose()
})

it('rejects labels that do not match the batch', () => {
  const model = createModel({ inputSize: 32, width: 4, seed: 1 })
  const optimizer = tf.train.sgd(0.1)
  const step = createTrainStep(model, optimizer)
  const { x, age, gender } = batch(4)
  const twoAges = tf.tensor1d([30, 40])
  const tensors = tf.memory().numTensors
  expect(() => step(x, twoAges, gender)).toThrow(/batch of 4 images has 2 ages/)
  expect(() => createTrainStep(model, optimizer, { genderWeight: -1 })).toThrow(/genderWeight/)
  expect(() => createTrainStep(model, optimizer, { genderSmoothing: 0.5 })).toThrow(/genderSmoothing/)
  expect(() => createTrainStep(model, optimizer, { genderSmoothing: -0.1 })).toThrow(/genderSmoothing/)
  // @ts-expect-error: an unknown loss name, as an untyped caller could pass
  expect(() => createTrainStep(model, optimizer, { distributionLoss: 'kl' })).toThrow(/distributionLoss/)
  expect(tf.memory().numTensors).toBe(tensors)
  tf.dispose([x, age, gender, twoAges])
  model.dispose()
})

it('trains a distribution head with DLDL-v2: the objective adds a non-negative KL, the expectation learns', () => {
  const model = createModel({ inputSize: 32, width: 4, seed: 3, ageBias: 35, ageHead: 'distribution' })
  expect(model.outputs.map((o) => o.shape)).toEqual([
    [null, 1],
    [null, 1],
  ])
  const optimizer = tf.train.adam(0.01)
  const step = createTrainStep(model, optimizer, { genderWeight: 2 })
  const { x, age, gender } = batch(8)
  const expectationKernel = () => Array.from(model.getLayer('age').getWeights()[0]!.dataSync())
  const bins = expectationKernel()

  const first = step(x, age, gender)
  // loss = L1 + KL + 2·BCE, and KL ≥ 0
  expect(first.loss).toBeGreaterThan(first.ageLoss + 2 * first.genderLoss)
  const tensors = tf.memory().numTensors
  let last = first
  for (let i = 0; i < 15; i++) last = step(x, age, gender)
  expect(tf.memory().numTensors).toBe(tensors)
  expect(last.ageLoss).toBeLessThan(first.ageLoss)
  expect(last.loss).toBeLessThan(first.loss)
  // the expectation layer is frozen: its kernel stays the bin ages
  expect(expectationKernel()).toEqual(bins)
  expect(bins.slice(0, 3)).toEqual([0, 1, 2])

  tf.dispose([x, age, gender])
  model.dispose()
  optimizer.dispose()
})

it('starts a distribution head near ageBias and reads the age as the expectation of its bins', () => {
  const model = createModel({ inputSize: 32, width: 4, seed: 1, ageBias: 40, ageHead: 'distribution' })
  const x = tf.zeros([2, 32, 32, 3])
  const [age] = model.predict(x) as tf.Tensor[]
  for (const a of age!.dataSync()) expect(Math.abs(a - 40)).toBeLessThan(10)
  tf.dispose([x, age!])
  model.dispose()
})

it('computes the label-distribution KL: zero when the prediction is the label distribution, larger when it is off', () => {
  const target = tf.tensor2d([[30]])
  const bins = tf.range(0, AGE_BINS, 1, 'float32')
  const exact = tf.reshape(tf.div(tf.neg(tf.square(tf.sub(bins, 30))), 2 * LABEL_SIGMA ** 2), [1, AGE_BINS])
  const shifted = tf.reshape(tf.div(tf.neg(tf.square(tf.sub(bins, 36))), 2 * LABEL_SIGMA ** 2), [1, AGE_BINS])
  const kl = (logits: tf.Tensor) => labelDistributionLoss(logits, target).dataSync()[0]!
  expect(kl(exact)).toBeCloseTo(0, 4)
  // KL between Gaussians of equal sigma: (Δ²) / (2σ²) = 36 / 8
  expect(kl(shifted)).toBeCloseTo(36 / (2 * LABEL_SIGMA ** 2), 2)
  tf.dispose([target, bins, exact, shifted])
})

it('smooths gender labels: the objective is linear in ε, the reported cross-entropy is the plain one', () => {
  const model = createModel({ inputSize: 32, width: 4, seed: 2, ageBias: 35 })
  // a zero learning rate keeps the weights, so the three steps see the same predictions
  const optimizer = tf.train.sgd(0)
  const { x, age, gender } = batch(8)
  const at = (genderSmoothing: number) =>
    createTrainStep(model, optimizer, { genderWeight: 2, genderSmoothing })(x, age, gender)
  const [plain, some, more] = [at(0), at(0.2), at(0.4)]
  expect(some.genderLoss).toBeCloseTo(plain.genderLoss, 5)
  expect(more.genderLoss).toBeCloseTo(plain.genderLoss, 5)
  expect(some.ageLoss).toBeCloseTo(plain.ageLoss, 5)
  // (1 − ε)·BCE(label) + ε·BCE(½): the change from ε = 0 doubles with ε, and is not zero
  expect(Math.abs(some.loss - plain.loss)).toBeGreaterThan(1e-4)
  expect(more.loss - plain.loss).toBeCloseTo(2 * (some.loss - plain.loss), 4)
  tf.dispose([x, age, gender])
  model.dispose()
})

it('computes the mean-variance loss: cross-entropy + λ1·½(mean − age)² + λ2·variance', () => {
  const bins = Array.from({ length: AGE_BINS }, (_, i) => i)
  // half the mass at 29, half at 31: mean 30, variance 1
  const twoPeaks = tf.tensor2d([bins.map((b) => (b === 29 || b === 31 ? 0 : -1e4))])
  const at31 = tf.tensor2d([[31]])
  const expected = Math.log(2) + MEAN_VARIANCE_WEIGHTS.mean * 0.5 + MEAN_VARIANCE_WEIGHTS.variance * 1
  expect(meanVarianceLoss(twoPeaks, at31).dataSync()[0]).toBeCloseTo(expected, 4)
  // a point mass on the label costs nothing; the label rounds to the nearest year for the cross-entropy
  const point = tf.tensor2d([bins.map((b) => (b === 30 ? 0 : -1e4))])
  expect(meanVarianceLoss(point, tf.tensor2d([[30]])).dataSync()[0]).toBeCloseTo(0, 4)
  expect(meanVarianceLoss(point, tf.tensor2d([[30.2]])).dataSync()[0]).toBeCloseTo(MEAN_VARIANCE_WEIGHTS.mean * 0.02, 4)
  tf.dispose([twoPeaks, at31, point])
})

it('trains a distribution head with the mean-variance loss instead of DLDL-v2', () => {
  const make = () => createModel({ inputSize: 32, width: 4, seed: 3, ageBias: 35, ageHead: 'distribution' })
  const { x, age, gender } = batch(8)
  const [dldl, mv] = [make(), make()]
  const firstDldl = createTrainStep(dldl, tf.train.sgd(0), { genderWeight: 2 })(x, age, gender)
  const optimizer = tf.train.adam(0.01)
  const step = createTrainStep(mv, optimizer, { genderWeight: 2, distributionLoss: 'mean-variance' })
  const first = step(x, age, gender)
  // same model, same batch, same L1 and gender figures: only the age objective differs
  expect(first.ageLoss).toBeCloseTo(firstDldl.ageLoss, 4)
  expect(Math.abs(first.loss - firstDldl.loss)).toBeGreaterThan(0.01)
  let last = first
  for (let i = 0; i < 15; i++) last = step(x, age, gender)
  expect(last.loss).toBeLessThan(first.loss)
  expect(last.ageLoss).toBeLessThan(first.ageLoss)
  tf.dispose([x, age, gender])
  dldl.dispose()
  mv.dispose()
  optimizer.dispose()
})
