/**
 * One optimizer step of the two-headed model: L1 on age (with a distribution head, see `core/model.ts`, plus
 * DLDL-v2's label-distribution KL, or instead the mean-variance loss) and weighted binary cross-entropy on
 * gender, optionally against smoothed labels.
 *
 * The model runs through `model.apply(x, { training: true })`, so BatchNorm normalizes with batch statistics
 * and updates its moving averages, and dropout is active; `model.fit` is not used because its per-batch
 * callbacks, validation plumbing and async ticks cost more than the step itself on small batches.
 *
 * Two flavours: {@link createTrainStep} returns plain numbers (one small device read per step, which on the
 * synchronous wasm/cpu/tfjs-node backends costs microseconds), {@link createTrainStepTensors} returns the
 * three losses as one tensor so a caller that logs only every N steps can skip even that read.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { applyGradients } from '../core/engine/index.js'
import { AGE_BINS, ageLogitsOutput } from '../core/model.js'
import { createParallelTrainStep } from './parallel-step.js'

export interface TrainStepOptions {
  /** Weight of the gender loss against the age L1 loss (years). @default 1 */
  readonly genderWeight?: number
  /**
   * Gender label smoothing ε: the cross-entropy's target is `label·(1 − ε) + ε/2`, so the head is not pushed
   * towards certainty on the labels that are wrong or ambiguous (infants). The reported `genderLoss` stays the
   * cross-entropy against the plain labels. @default 0
   */
  readonly genderSmoothing?: number
  /**
   * The age objective of a distribution head (a regression head always trains on L1):
   * `dldl` (DLDL-v2: KL to a Gaussian label + L1 of the expectation) or `mean-variance` (Pan et al., 2018:
   * softmax cross-entropy + 0.2·½(mean − age)² + 0.05·variance). @default 'dldl'
   */
  readonly distributionLoss?: DistributionLoss
  /**
   * Data-parallel replicas: 1 runs the step on this thread; N ≥ 2 shards each batch over this thread and
   * N - 1 worker threads (`parallel-step.ts`; Adam only). The step then has a `close()` that stops them.
   * @default 1
   */
  readonly replicas?: number
}

export interface StepLosses {
  /** The objective: the age objective (L1, L1 + KL or mean-variance) `+ genderWeight ×` the (smoothed) gender cross-entropy */
  readonly loss: number
  /** Mean absolute age error in years over the batch. */
  readonly ageLoss: number
  /** Mean binary cross-entropy of the gender probability. */
  readonly genderLoss: number
}

export type TrainStep = (x: tf.Tensor4D, age: tf.Tensor1D | tf.Tensor2D, gender: tf.Tensor) => StepLosses

/** Like {@link TrainStep} but returns `[loss, ageLoss, genderLoss]` as a float32 tensor the caller disposes. */
export type TensorTrainStep = (x: tf.Tensor4D, age: tf.Tensor1D | tf.Tensor2D, gender: tf.Tensor) => tf.Tensor1D

export type DistributionLoss = 'dldl' | 'mean-variance'

/** The validated loss settings {@link batchGradients} needs (plain data: workers receive it as is). */
export interface LossSettings {
  readonly genderWeight: number
  readonly genderSmoothing: number
  readonly distributionLoss: DistributionLoss
}

/** Probabilities are clipped away from 0 and 1 before the log, as Keras does. */
const EPSILON = 1e-7
/**
 * DLDL-v2 (Gao et al., 2018) for a model with a distribution head: the label is a Gaussian over the age bins
 * with this spread (years), and the age loss is KL(label ‖ predicted) + the L1 error of the expectation.
 */
export const LABEL_SIGMA = 2

/** With a distribution head, a view of `model` that also outputs the age logits (same layers and weights). */
const trainingViews = new WeakMap<tf.LayersModel, tf.LayersModel>()
function trainingView(model: tf.LayersModel): { view: tf.LayersModel; distribution: boolean } {
  const logits = ageLogitsOutput(model)
  if (!logits) return { view: model, distribution: false }
  let view = trainingViews.get(model)
  if (!view) {
    view = tf.model({ inputs: model.inputs, outputs: [...(model.outputs as tf.SymbolicTensor[]), logits] })
    trainingViews.set(model, view)
  }
  return { view, distribution: true }
}

/** Mean KL divergence from the Gaussian label distributions around `ageTarget` `[batch, 1]` to softmax(logits). */
export function labelDistributionLoss(logits: tf.Tensor, ageTarget: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const bins = tf.reshape(tf.range(0, AGE_BINS, 1, 'float32'), [1, AGE_BINS])
    const target = tf.softmax(tf.div(tf.neg(tf.square(tf.sub(bins, ageTarget))), 2 * LABEL_SIGMA ** 2))
    const logTarget = tf.log(tf.add(target, 1e-12))
    return tf.mean(tf.sum(tf.mul(target, tf.sub(logTarget, tf.logSoftmax(logits))), 1)) as tf.Scalar
  })
}

/** The weights of the mean-variance loss's mean and variance terms (Pan et al., 2018, λ1 and λ2). */
export const MEAN_VARIANCE_WEIGHTS = { mean: 0.2, variance: 0.05 } as const

/**
 * Mean-variance loss (Pan et al., 2018) of age logits `[batch, AGE_BINS]` for ages `[batch, 1]`: softmax
 * cross-entropy with the nearest whole year, + λ1·½(E[age] − age)² + λ2·Var[age] under the predicted distribution.
 */
export function meanVarianceLoss(logits: tf.Tensor, ageTarget: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const bins = tf.reshape(tf.range(0, AGE_BINS, 1, 'float32'), [1, AGE_BINS])
    const logP = tf.logSoftmax(logits)
    const p = tf.exp(logP)
    const year = tf.clipByValue(tf.round(ageTarget), 0, AGE_BINS - 1)
    const oneHot = tf.cast(tf.equal(bins, year), 'float32')
    const crossEntropy = tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logP), 1)))
    const mean = tf.sum(tf.mul(p, bins), 1, true)
    const meanLoss = tf.mean(tf.div(tf.square(tf.sub(mean, ageTarget)), 2))
    const varianceLoss = tf.mean(tf.sum(tf.mul(p, tf.square(tf.sub(bins, mean))), 1))
    return tf.addN([
      crossEntropy,
      tf.mul(MEAN_VARIANCE_WEIGHTS.mean, meanLoss),
      tf.mul(MEAN_VARIANCE_WEIGHTS.variance, varianceLoss),
    ]) as tf.Scalar
  })
}

/** The losses and gradients of one batch, not applied; the caller disposes `grads` and `losses`. */
export interface BatchGradients {
  /** The trainable variables, in `model.trainableWeights` order. */
  readonly variables: tf.Variable[]
  readonly grads: tf.NamedTensorMap
  /** `[loss, ageLoss, genderLoss]` */
  readonly losses: tf.Tensor1D
}

/**
 * Forward (training mode, so BatchNorm updates its moving statistics) and backward pass of one batch.
 * Shared by the single-thread step and each data-parallel replica (`parallel-step.ts`).
 */
export function batchGradients(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  x: tf.Tensor4D,
  age: tf.Tensor1D | tf.Tensor2D,
  gender: tf.Tensor,
  loss: LossSettings
): BatchGradients {
  const batch = x.shape[0]
  if (age.size !== batch || gender.size !== batch) {
    throw new Error(`batch of ${batch} images has ${age.size} ages and ${gender.size} genders`)
  }
  // Looked up per step: a caller may freeze or unfreeze layers between steps.
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable)
  const { view, distribution } = trainingView(model)
  // computeGradients() runs the loss function in its own tidy and keeps only the total, so the two parts
  // are kept explicitly and released once stacked.
  let parts: tf.Scalar[] = []
  try {
    return tf.tidy(() => {
      const ageTarget = tf.reshape(age, [batch, 1])
      const genderTarget = tf.cast(tf.reshape(gender, [batch, 1]), 'float32')
      const { value: cost, grads } = optimizer.computeGradients(() => {
        const [agePred, genderPred, ageLogits] = view.apply(x, { training: true }) as tf.Tensor[]
        if (!agePred || !genderPred) throw new Error('the model must have two outputs: age and gender')
        const ageLoss = tf.mean(tf.abs(tf.sub(agePred, ageTarget))) as tf.Scalar
        const ageObjective = !distribution
          ? ageLoss
          : loss.distributionLoss === 'mean-variance'
            ? meanVarianceLoss(ageLogits!, ageTarget)
            : tf.add(ageLoss, labelDistributionLoss(ageLogits!, ageTarget))
        const p = tf.clipByValue(genderPred, EPSILON, 1 - EPSILON)
        const logP = tf.log(p)
        const log1mP = tf.log(tf.sub(1, p))
        const genderLoss = tf.neg(
          tf.mean(tf.add(tf.mul(genderTarget, logP), tf.mul(tf.sub(1, genderTarget), log1mP)))
        ) as tf.Scalar
        // smoothing is linear in the target: (1 − ε)·BCE(label) + ε·BCE(½)
        const genderObjective =
          loss.genderSmoothing > 0
            ? tf.add(
                tf.mul(1 - loss.genderSmoothing, genderLoss),
                tf.mul(loss.genderSmoothing, tf.neg(tf.mean(tf.mul(0.5, tf.add(logP, log1mP)))))
              )
            : genderLoss
        parts = [tf.keep(ageLoss), tf.keep(genderLoss)]
        return tf.add(ageObjective, tf.mul(loss.genderWeight, genderObjective)) as tf.Scalar
      }, variables)
      return { variables, grads, losses: tf.stack([cost, ...parts]) as tf.Tensor1D }
    })
  } finally {
    tf.dispose(parts)
  }
}

export function lossSettings(options: TrainStepOptions): LossSettings {
  const { genderWeight = 1, genderSmoothing = 0, distributionLoss = 'dldl' } = options
  if (!Number.isFinite(genderWeight) || genderWeight < 0) {
    throw new Error(`genderWeight must be a non-negative number, got ${genderWeight}`)
  }
  if (!Number.isFinite(genderSmoothing) || genderSmoothing < 0 || genderSmoothing >= 0.5) {
    throw new Error(`genderSmoothing must be in [0, 0.5), got ${genderSmoothing}`)
  }
  if (distributionLoss !== 'dldl' && distributionLoss !== 'mean-variance') {
    throw new Error(`distributionLoss must be dldl or mean-variance, got ${String(distributionLoss)}`)
  }
  return { genderWeight, genderSmoothing, distributionLoss }
}

export function createTrainStepTensors(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  options: TrainStepOptions = {}
): TensorTrainStep {
  const loss = lossSettings(options)
  return (x, age, gender) => {
    const { variables, grads, losses } = batchGradients(model, optimizer, x, age, gender, loss)
    try {
      applyGradients(
        optimizer,
        variables.map((v) => ({ name: v.name, tensor: grads[v.name] }))
      )
    } finally {
      tf.dispose(grads)
    }
    return losses
  }
}

export function createTrainStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  options: TrainStepOptions = {}
): TrainStep {
  const replicas = options.replicas ?? 1
  if (replicas !== 1) return createParallelTrainStep(model, optimizer, lossSettings(options), replicas)
  const step = createTrainStepTensors(model, optimizer, options)
  return (x, age, gender) => {
    const losses = step(x, age, gender)
    const [loss = NaN, ageLoss = NaN, genderLoss = NaN] = losses.dataSync()
    losses.dispose()
    return { loss, ageLoss, genderLoss }
  }
}
