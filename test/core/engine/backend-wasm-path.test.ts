/** `wasmPath` points the wasm backend at a folder holding its binaries (as a Lambda bundle does). */
import { createRequire } from 'node:module'
import path from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { expect, it } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'

it('loads the wasm binaries from an explicit folder', async () => {
  const folder = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))
  const info = await initEngine({ backend: 'wasm', wasmPath: folder })
  expect(info.name).toBe('wasm')
  expect(tf.tidy(() => Array.from(tf.add(tf.tensor1d([1, 2]), 1).dataSync()))).toEqual([2, 3])
})
