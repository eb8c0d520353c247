/**
 * The fused BatchNorm training op against tfjs's own moments + batchNorm with autodiff (what tfjs-layers
 * does), on the cpu backend and on wasm (SIMD kernel for channels % 4 == 0, JS otherwise). The SIMD kernels
 * use relaxed SIMD's FMA where the runtime has it (Node 22+); the layer case also runs with FMA forced off.
 */
import * as tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'
import { batchNormTraining, stockBatchNormCall } from '../../../core/engine/batch-norm.js'
import { setSimdFmaEnabled, setSimdKernelsEnabled } from '../../../core/engine/simd/kernels.js'

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
})

function random(size: number, seed: number, scale = 1, offset = 0): Float32Array {
  let s = seed * 2654435761 + 7
  return Float32Array.from({ length: size }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return ((s / 2 ** 32) * 2 - 1) * scale + offset
  })
}

async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend)
  try {
    const out = tf.tidy(f)
    const values = out.map((t) => t.dataSync().slice() as Float32Array)
    tf.dispose(out)
    return values
  } finally {
    await tf.setBackend('wasm')
  }
}

function expectClose(actual: Float32Array, expected: Float32Array, tolerance = 2e-4): void {
  let scale = 1e-3
  for (const v of expected) scale = Math.max(scale, Math.abs(v))
  let worst = 0
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!))
  expect(worst / scale, `max abs diff ${worst}, scale ${scale}`).toBeLessThanOrEqual(tolerance)
}

const EPS = 1e-5

describe('batchNormTraining', () => {
  for (const shape of [
    [3, 5, 4, 8],
    [2, 3, 3, 6],
    [16, 12],
    [64, 4],
  ]) {
    it(`matches moments + batchNorm autodiff for [${shape}]`, async () => {
      const size = shape.reduce((a, b) => a * b, 1)
      const c = shape[shape.length - 1]!
      // An offset mean and non-unit scale, so centering and scaling both matter.
      const xv = random(size, 1, 2, 0.7)
      const gv = random(c, 2, 0.5, 1)
      const bv = random(c, 3)
      const rv = random(size, 4)
      const axes = [...Array(shape.length - 1).keys()]
      const inputs = () => [tf.tensor(xv, shape), tf.tensor1d(gv), tf.tensor1d(bv), tf.tensor(rv, shape)] as const
      const ours = () => {
        const [x, g, b, r] = inputs()
        const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
          const { y, mean, variance } = batchNormTraining(xx, gg, bb, EPS)
          tf.dispose([mean, variance])
          return tf.sum(tf.mul(y, r))
        }
        const { y, mean, variance } = batchNormTraining(x, g, b, EPS)
        return [y, mean, variance, ...tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([x, g, b])]
      }
      const reference = () => {
        const [x, g, b, r] = inputs()
        const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
          const { mean, variance } = tf.moments(xx, axes)
          return tf.sum(tf.mul(tf.batchNorm(xx, mean, variance, bb, gg, EPS), r))
        }
        const { mean, variance } = tf.moments(x, axes)
        return [
          tf.batchNorm(x, mean, variance, b, g, EPS),
          mean,
          variance,
          ...tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([x, g, b]),
        ]
      }
      const expected = await on('cpu', reference)
      for (const actual of [await on('wasm', ours), await on('cpu', ours)]) {
        actual.forEach((v, i) => {
          expectClose(v, expected[i]!)
        })
      }
    })
  }
})

describe.each([
  ['SIMD kernels', true, true],
  ['SIMD kernels, FMA forced off', true, false],
  ['JS loops (SIMD forced off)', false, true],
] as const)('patched BatchNormalization layer, %s', (_, simdOn, fmaOn) => {
  beforeAll(() => {
    setSimdKernelsEnabled(simdOn)
    setSimdFmaEnabled(fmaOn)
  })
  afterAll(() => {
    setSimdKernelsEnabled(true)
    setSimdFmaEnabled(true)
  })

  it('trains like the stock layer (output, gradients, moving statistics) and infers unchanged', async () => {
    const shape = [4, 3, 3, 8]
    const xv = random(4 * 3 * 3 * 8, 5, 1.5, -0.3)
    const rv = random(4 * 3 * 3 * 8, 6)
    const run = (stock: boolean) => () => {
      const layer = tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: EPS })
      layer.build([null, 3, 3, 8])
      layer.setWeights([tf.tensor1d(random(8, 7, 0.3, 1)), tf.tensor1d(random(8, 8)), tf.zeros([8]), tf.ones([8])])
      const call = (x: tf.Tensor, training: boolean) =>
        (stock
          ? stockBatchNormCall()!.call(layer as never, x, { training })
          : layer.apply(x, { training })) as tf.Tensor
      const x = tf.tensor(xv, shape)
      const r = tf.tensor(rv, shape)
      const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable)
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(call(x, true), r)) as tf.Scalar, vars)
      const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(call(xx, true), r)))(x)
      const out = [value, dx, ...vars.map((v) => grads[v.name]!), ...layer.getWeights().slice(2), call(x, false)]
      return out
    }
    const expected = await on('cpu', run(true))
    const actual = await on('wasm', run(false))
    actual.forEach((v, i) => {
      expectClose(v, expected[i]!)
    })
  })
})
