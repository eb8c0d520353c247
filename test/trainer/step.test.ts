/** The training step on the wasm engine with a tiny ResNet: learning, BatchNorm updates, no tensor leaks. */
import * as tf from '@tensorflow/tfjs'
import { beforeAll, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { createModel } from '../../core/model.js'
import { createTrainStep, createTrainStepTensors } from '../../trainer/step.js'

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
  expect(tf.memory().numTensors).toBe(tensors)
  tf.dispose([x, age, gender, twoAges])
  model.dispose()
})
