import * as tf from '@tensorflow/tfjs'
import { createRng } from '../core/random.js'

/** A freshly built model has identity BatchNorm statistics; give every BatchNorm trained-looking ones. */
export function randomizeBatchNorms(model: tf.LayersModel, seed: number): void {
  const rng = createRng(seed)
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue
    const n = layer.getWeights()[0]!.shape[0]!
    const vec = (lo: number, hi: number) => tf.tensor1d(Array.from({ length: n }, () => rng.uniform(lo, hi)))
    const values = [vec(0.5, 1.5), vec(-0.3, 0.3), vec(-0.5, 0.5), vec(0.3, 2)] // gamma, beta, mean, variance
    layer.setWeights(values)
    tf.dispose(values)
  }
}
