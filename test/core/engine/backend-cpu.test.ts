/** A forced plain-JS backend, in a fresh worker: no wasm kernels or patches installed. */
import * as tf from '@tensorflow/tfjs'
import { expect, it } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'

it('forces the cpu backend', async () => {
  const info = await initEngine({ backend: 'cpu' })
  expect(info).toMatchObject({ name: 'cpu', description: 'cpu (plain JavaScript, slow)' })
  // the wasm kernels and patches are not installed for another backend
  expect(Object.keys(info.report.features)).toEqual(['tfjs-version'])
  expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined()
  expect(tf.getBackend()).toBe('cpu')
})
