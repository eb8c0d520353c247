/**
 * FMA forced off before the engine starts (`setSimdFmaEnabled(false)`, as `bench:train --no-fma` does): the
 * report says so with the reason, the SIMD kernels stay on, and the BatchNorm gradient still computes. Its
 * own file, so the process-wide engine starts with the switch off (vitest `forks` pool).
 */
import * as tf from '@tensorflow/tfjs'
import { expect, it } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'
import { setSimdFmaEnabled } from '../../../core/engine/simd/kernels.js'

it('reports FMA off with the reason when forced off, and keeps the SIMD kernels', async () => {
  setSimdFmaEnabled(false)
  const { report } = await initEngine({ backend: 'wasm' })
  expect(report.features['simd-fma']).toEqual({
    on: false,
    detail: 'turned off (setSimdFmaEnabled(false)): plain f32x4 mul + add',
  })
  expect(report.features['simd-kernels']).toMatchObject({ on: true })
  expect(report.features['gemm-conv']).toMatchObject({
    on: false,
    detail: expect.stringMatching(/^XNNPACK's convolutions/),
  })
  // The BatchNorm gradient through the SIMD kernels without FMA (8 channels: the SIMD path).
  const x = tf.tensor4d(
    Float32Array.from({ length: 2 * 3 * 3 * 8 }, (_, i) => Math.sin(i)),
    [2, 3, 3, 8]
  )
  const layer = tf.layers.batchNormalization({ axis: -1 })
  const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.square(layer.apply(v, { training: true }) as tf.Tensor)))(x)
  expect(Array.from(dx.dataSync()).every(Number.isFinite)).toBe(true)
})
