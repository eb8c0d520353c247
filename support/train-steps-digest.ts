/**
 * A few training steps of a small ResNet18 (width 16, 64 px, distribution head) on the wasm engine with
 * `--threads N`, then one line of JSON: the engine's description, its `xnnpack-threads` and `gemm-conv` features and the sha256 of
 * every weight's bytes. Runs as its own process (the engine is process-wide) and ends without `process.exit`,
 * so a caller also sees that the thread pool does not keep a process alive.
 *
 *   tsx support/train-steps-digest.ts --threads 2 [--steps 3]
 * @module
 */
import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { initEngine } from '../core/engine/index.js'
import { createModel } from '../core/model.js'
import { createTrainStep } from '../trainer/step.js'

const { values } = parseArgs({ options: { threads: { type: 'string' }, steps: { type: 'string', default: '3' } } })
const engine = await initEngine({ backend: 'wasm', threads: Number(values.threads ?? 1) })
const model = createModel({ inputSize: 64, width: 16, seed: 7, ageHead: 'distribution' })
const step = createTrainStep(model, tf.train.adam(1e-3), { genderWeight: 3 })
const batch = 8
const x = tf.randomNormal([batch, 64, 64, 3], 0, 1, 'float32', 11) as tf.Tensor4D
const age = tf.randomUniform([batch], 1, 90, 'float32', 12) as tf.Tensor1D
const gender = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([batch], 0, 1, 'float32', 13), 0.5), 'float32'))
const losses: number[] = []
for (let i = 0; i < Number(values.steps); i++) losses.push(step(x, age, gender).loss)
const hash = createHash('sha256')
for (const w of model.weights) hash.update(new Uint8Array((w.read().dataSync() as Float32Array).buffer))
console.log(
  JSON.stringify({
    description: engine.description,
    threads: engine.report.features['xnnpack-threads'],
    gemm: engine.report.features['gemm-conv'],
    losses,
    digest: hash.digest('hex'),
  })
)
