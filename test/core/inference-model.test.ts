import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { toInferenceModel } from '../../core/inference-model.js'
import { createModel } from '../../core/model.js'
import { randomizeBatchNorms } from '../../support/models.js'

const outputs = (model: tf.LayersModel, x: tf.Tensor) =>
  tf.tidy(() => (model.predict(x) as tf.Tensor[]).map((t) => t.arraySync() as number[][]))

describe('toInferenceModel', () => {
  beforeAll(async () => {
    await initEngine()
  })

  it('folds every BatchNorm into its convolution and keeps the inference outputs to 1e-4', async () => {
    // Prepare
    const model = createModel({ inputSize: 64, width: 16, dropout: 0.3, seed: 3, ageBias: 30 })
    randomizeBatchNorms(model, 11)
    const x = tf.randomNormal([4, 64, 64, 3], 0, 1, 'float32', 5)
    const before = outputs(model, x)
    const tensorsBefore = tf.memory().numTensors
    // Act
    const { model: inference, folded } = await toInferenceModel(model)
    // Assess
    const names = inference.layers.map((l) => l.getClassName())
    expect(names).not.toContain('BatchNormalization')
    expect(names).not.toContain('Dropout')
    expect(folded).toEqual({ batchNorms: 20, relus: 9, dropouts: 1 })
    // stem + first conv of each block: 9 fused ReLUs; the ReLUs after each residual add stay
    expect(names.filter((n) => n === 'ReLU')).toHaveLength(8)
    expect(inference.outputNames).toEqual(['age', 'gender'])
    const after = outputs(inference, x)
    for (let o = 0; o < 2; o++) {
      for (let i = 0; i < 4; i++)
        expect(Math.abs(after[o]![i]![0]! - before[o]![i]![0]!)).toBeLessThan(
          1e-4 * Math.max(1, Math.abs(before[o]![i]![0]!))
        )
    }
    // the outputs really depend on the BatchNorm statistics (the comparison above could not pass by accident)
    expect(Math.abs(before[0]![0]![0]! - before[0]![1]![0]!)).toBeGreaterThan(1e-3)
    // the original is untouched and still runs; the fold left no tensors behind besides the new model's weights
    expect(outputs(model, x)).toEqual(before)
    const newWeights = inference.weights.length
    expect(tf.memory().numTensors - tensorsBefore).toBe(newWeights)
    inference.dispose()
    model.dispose()
    x.dispose()
  })

  it('leaves a BatchNorm alone when its convolution has another consumer', async () => {
    const input = tf.input({ shape: [8, 8, 2] })
    const conv = tf.layers
      .conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false })
      .apply(input) as tf.SymbolicTensor
    const bn = tf.layers.batchNormalization({ axis: -1 }).apply(conv) as tf.SymbolicTensor
    const sum = tf.layers.add().apply([bn, conv]) as tf.SymbolicTensor
    const model = tf.model({ inputs: input, outputs: sum })
    randomizeBatchNorms(model, 2)
    const x = tf.randomUniform([2, 8, 8, 2], -1, 1, 'float32', 1)
    const { model: inference, folded } = await toInferenceModel(model)
    expect(folded.batchNorms).toBe(0)
    const [a, b] = [(model.predict(x) as tf.Tensor).dataSync(), (inference.predict(x) as tf.Tensor).dataSync()]
    a.forEach((v, i) => {
      expect(Math.abs(v - b[i]!)).toBeLessThan(1e-5)
    })
    x.dispose()
    model.dispose()
    inference.dispose()
  })
})
