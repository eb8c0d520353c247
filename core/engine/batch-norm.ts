/**
 * BatchNormalization in training mode as one op with a hand-written gradient.
 *
 * tfjs-layers normalizes a training batch with `tf.moments` + `tf.batchNorm`, and autodiff then walks ~25
 * element-wise ops over the full activation per layer backwards (tiling the scale, differentiating the mean
 * and the variance separately...). The closed form needs two reductions and one pass:
 *
 *   dx = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)),  dgamma = sum(dy * xhat),  dbeta = sum(dy)
 *
 * On the wasm backend the backward is one SIMD kernel (`BatchNormTrainingGrad`, two passes over the data);
 * elsewhere it is eight tf ops. The forward is unchanged (`mean`, `squaredDifference`, `batchNorm`), and so
 * are the moving-average updates, which reuse the same batch statistics.
 *
 * Installed by patching `BatchNormalization.prototype.call` of the tfjs-layers copy in use: only the training
 * branch of a layer normalizing over the last axis with both scale and center is rerouted; everything else
 * (inference, other axes) runs the original method, as does every call while another backend than wasm is
 * active: the patch serves the wasm backend only.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { type EngineFeature, off, on } from './report.js'

export const BATCH_NORM_GRAD_KERNEL = 'AgeGenderBatchNormTrainingGrad'

interface BatchNormLayer {
  axis: number
  momentum: number
  epsilon: number
  center: boolean
  scale: boolean
  gamma: tf.LayerVariable | null
  beta: tf.LayerVariable | null
  movingMean: tf.LayerVariable
  movingVariance: tf.LayerVariable
}

type Call = (this: BatchNormLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }) => tf.Tensor

let original: Call | undefined

const ON = on('BatchNormalization.prototype.call: training branch as one op with a closed-form gradient')

/** Installs the patch once; the result says whether it is active and, if not, why. */
export function installFusedBatchNorm(): EngineFeature {
  if (original) return ON
  const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: Call }
  if (typeof proto.call !== 'function') return off('this tfjs-layers has no BatchNormalization.prototype.call')
  for (const field of ['axis', 'momentum', 'epsilon', 'center', 'scale'] as const) {
    if (!(field in tf.layers.batchNormalization({})))
      return off(`this tfjs-layers BatchNormalization has no '${field}' field`)
  }
  original = proto.call
  const stock = original
  proto.call = function (this: BatchNormLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs
    const training = kwargs?.['training'] ?? false
    const lastAxis = x !== undefined && (this.axis === -1 || this.axis === x.rank - 1)
    if (
      tf.getBackend() !== 'wasm' ||
      !training ||
      !x ||
      !lastAxis ||
      x.rank < 2 ||
      !this.center ||
      !this.scale ||
      !this.gamma ||
      !this.beta ||
      x.dtype !== 'float32'
    ) {
      return stock.call(this, inputs, kwargs)
    }
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(x, this.gamma!.read(), this.beta!.read(), this.epsilon)
      // The same moving-average update as tfjs-layers: v <- v - (v - value) * (1 - momentum).
      for (const [variable, value] of [
        [this.movingMean, mean],
        [this.movingVariance, variance],
      ] as const) {
        tf.tidy(() => {
          const old = variable.read()
          variable.write(tf.sub(old, tf.mul(tf.sub(old, value), 1 - this.momentum)))
        })
      }
      tf.dispose([mean, variance])
      return y
    })
  } as Call
  return ON
}

/** The unpatched `BatchNormalization.prototype.call` (for comparisons), once installed. */
export function stockBatchNormCall(): Call | undefined {
  return original
}

/**
 * Normalizes `x` over all axes but the last with its own batch statistics; returns them too (the caller
 * disposes `mean` and `variance`).
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number
): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const axes = [...Array(x.rank - 1).keys()]
  let stats: [tf.Tensor, tf.Tensor] | undefined
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc]
    const mean = tf.mean(input, axes)
    const variance = tf.mean(tf.squaredDifference(input, mean), axes)
    const value = tf.batchNorm(input, mean, variance, b, g, epsilon)
    save([input, mean, variance, g])
    stats = [tf.keep(tf.clone(mean)), tf.keep(tf.clone(variance))]
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, smean, svar, sgamma] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
        return batchNormTrainingGrad(dy, sx, smean, svar, sgamma, epsilon)
      },
    }
  })
  const y = op(x, gamma, beta)
  const [mean, variance] = stats!
  return { y, mean, variance }
}

/** `[dx, dgamma, dbeta]`; a backend may register {@link BATCH_NORM_GRAD_KERNEL} to do it in one kernel. */
export function batchNormTrainingGrad(
  dy: tf.Tensor,
  x: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  gamma: tf.Tensor,
  epsilon: number
): tf.Tensor[] {
  if (tf.getKernel(BATCH_NORM_GRAD_KERNEL, tf.getBackend())) {
    return tf.engine().runKernel(BATCH_NORM_GRAD_KERNEL, { dy, x, mean, variance, gamma }, { epsilon }) as tf.Tensor[]
  }
  return tf.tidy(() => {
    const axes = [...Array(x.rank - 1).keys()]
    const count = x.size / x.shape[x.rank - 1]!
    const rstd = tf.rsqrt(tf.add(variance, epsilon))
    const centered = tf.sub(x, mean)
    const dbeta = tf.sum(dy, axes)
    const dCentered = tf.sum(tf.mul(dy, centered), axes)
    const dgamma = tf.mul(dCentered, rstd)
    // dx = a*dy + b*(x - mean) + c
    const a = tf.mul(gamma, rstd)
    const b = tf.div(tf.mul(tf.neg(a), tf.mul(tf.square(rstd), dCentered)), count)
    const c = tf.div(tf.mul(tf.neg(a), dbeta), count)
    const dx = tf.add(tf.add(tf.mul(dy, a), tf.mul(centered, b)), c)
    return [dx, dgamma, dbeta]
  })
}
