/** Fine-tuning optimizer: heads at the full rate, backbone scaled (0 = frozen), checkpoints like one Adam. */
import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { createModel } from '../../core/model.js'
import { headVariableNames, LayerwiseAdam } from '../../trainer/layerwise-adam.js'
import { createTrainStep } from '../../trainer/step.js'

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
})

function data(n: number) {
  const x = tf.tidy(() => tf.randomNormal([n, 32, 32, 3], 0, 1, 'float32', 11)) as tf.Tensor4D
  const age = tf.tidy(() => tf.add(tf.mul(tf.mean(x, [1, 2, 3]), 40), 35)) as tf.Tensor1D
  const gender = tf.tidy(() => tf.cast(tf.greater(tf.mean(x, [1, 2, 3]), 0), 'float32'))
  return { x, age, gender }
}

const snapshot = (model: tf.LayersModel, layer: string) => Array.from(model.getLayer(layer).getWeights()[0]!.dataSync())
const change = (a: number[], b: number[]) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0)

/** Trains a fresh tiny model for `steps` with the given backbone scale; returns how far stem and head moved. */
function moved(scale: number, steps = 3) {
  const model = createModel({ inputSize: 32, width: 4, seed: 3, ageBias: 35 })
  const optimizer = new LayerwiseAdam(0.01, headVariableNames(model), scale)
  const step = createTrainStep(model, optimizer)
  const { x, age, gender } = data(8)
  const stem0 = snapshot(model, 'conv1')
  const head0 = snapshot(model, 'age')
  for (let i = 0; i < steps; i++) step(x, age, gender)
  const result = { stem: change(stem0, snapshot(model, 'conv1')), head: change(head0, snapshot(model, 'age')) }
  tf.dispose([x, age, gender])
  model.dispose()
  optimizer.dispose()
  return result
}

describe('LayerwiseAdam', () => {
  it('names only the two heads as head variables', () => {
    const model = createModel({ inputSize: 32, width: 4 })
    const heads = headVariableNames(model)
    expect(heads.size).toBe(4) // kernel + bias of age and gender
    expect([...heads].every((n) => /^(age|gender)\//.test(n))).toBe(true)
    model.dispose()
  })

  it('freezes the backbone at scale 0, moves it less at 0.1 than at 1, and always trains the heads', () => {
    const frozen = moved(0)
    const slow = moved(0.1)
    const full = moved(1)
    expect(frozen.stem).toBe(0)
    expect(frozen.head).toBeGreaterThan(0)
    expect(slow.stem).toBeGreaterThan(0)
    expect(slow.stem).toBeLessThan(full.stem * 0.5)
    expect(slow.head).toBeGreaterThan(0)
  })

  it('saves and restores its state in the single-Adam layout, and continues identically', async () => {
    const make = () => {
      const model = createModel({ inputSize: 32, width: 4, seed: 9, ageBias: 35 })
      const optimizer = new LayerwiseAdam(0.01, headVariableNames(model), 0.1)
      return { model, optimizer, step: createTrainStep(model, optimizer) }
    }
    const { x, age, gender } = data(4)
    const a = make()
    a.step(x, age, gender)
    a.step(x, age, gender)
    const state = await a.optimizer.getWeights()
    const variables = a.model.trainableWeights.length
    expect(state.length).toBe(1 + 2 * variables)
    expect(state[0]!.name).toBe('iter')
    expect(state.slice(1, 1 + variables).every((w) => w.name.endsWith('/m'))).toBe(true)

    const b = make()
    b.model.setWeights(a.model.getWeights())
    b.step(x, age, gender) // creates its moment slots, then overwritten by the restore
    b.model.setWeights(a.model.getWeights())
    await b.optimizer.setWeights(state.map((w) => ({ name: w.name, tensor: w.tensor.clone() })))
    a.step(x, age, gender)
    b.step(x, age, gender)
    // Adam's restore recomputes beta^t with pow() where the running optimizer multiplied: float rounding only
    for (const layer of ['conv1', 'layer3.1.conv2', 'gender']) {
      const worst = Math.max(...snapshot(b.model, layer).map((v, i) => Math.abs(v - snapshot(a.model, layer)[i]!)))
      expect(worst).toBeLessThan(1e-6)
    }
    expect(change(snapshot(b.model, 'conv1'), snapshot(make().model, 'conv1'))).toBeGreaterThan(0)
    tf.dispose([x, age, gender])
  })
})
