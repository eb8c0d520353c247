/**
 * Backend selection. Runs in its own worker (vitest `forks` pool), so the process-wide engine starts fresh:
 * no tfjs-node is installed here, so forcing it fails with the package's name and auto falls through to wasm.
 */
import * as tf from '@tensorflow/tfjs'
import { expect, it } from 'vitest'
import { BACKEND_CHOICES, initEngine } from '../../../core/engine/index.js'

it('names the missing package when a native backend is forced', async () => {
  await expect(initEngine({ backend: 'tensorflow' })).rejects.toThrow(
    /@tensorflow\/tfjs-node is not installed; install it/
  )
  await expect(initEngine({ backend: 'tensorflow-gpu' })).rejects.toThrow(/@tensorflow\/tfjs-node-gpu is not installed/)
})

it('rejects an unknown choice', async () => {
  await expect(initEngine({ backend: 'webgpu' as never })).rejects.toThrow(
    /unknown backend 'webgpu'.*auto, tensorflow-gpu/
  )
  expect(BACKEND_CHOICES).toContain('wasm')
})

it('auto picks wasm with the training kernels, once, and reports why it passed over the native rungs', async () => {
  const first = initEngine()
  const info = await first
  expect(info.name).toBe('wasm')
  expect(info.description).toMatch(/^wasm \(SIMD kernels, 1 thread, 12 training kernels, 3\/3 patches\)$/)
  expect(info.report.fallbacks).toEqual([
    'tensorflow-gpu: @tensorflow/tfjs-node-gpu is not installed; install it or pick another backend',
    'tensorflow: @tensorflow/tfjs-node is not installed; install it or pick another backend',
  ])
  for (const name of [
    'training-kernels',
    'simd-kernels',
    'lazy-conv-gradients',
    'fused-batch-norm',
    'fused-adam',
    'tfjs-version',
  ]) {
    expect(info.report.features[name], name).toMatchObject({ on: true })
  }
  expect(tf.getBackend()).toBe('wasm')
  expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined()
  expect(initEngine()).toBe(first)
  await expect(initEngine({ backend: 'wasm' })).resolves.toBe(info)
  await expect(initEngine({ backend: 'cpu' })).rejects.toThrow(/already initialized with wasm; cannot switch to cpu/)
})

it('does not nag about tfjs-node when the cpu backend is used', async () => {
  const warnings: unknown[] = []
  const warn = console.warn
  console.warn = (...args: unknown[]) => void warnings.push(args)
  try {
    await tf.setBackend('cpu')
    tf.tidy(() => tf.add(tf.scalar(1), 2).dataSync())
  } finally {
    console.warn = warn
    await tf.setBackend('wasm')
  }
  expect(warnings.join(' ')).not.toMatch(/tfjs-node/)
})
