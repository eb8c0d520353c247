/**
 * Applies an optimizer's update, with one fused pass per variable for Adam on the wasm backend.
 *
 * tfjs's `AdamOptimizer.applyGradients` runs 14 element-wise ops per variable; for ResNet18's 11M weights
 * that is ~150M element-ops through separate kernels each step, which dominated a step once the convolution
 * gradients were fast. Here the same update (same state objects, same formula, float64 intermediates) is one
 * JS loop over the wasm heap per variable. The results go to fresh tensors that the variables are assigned,
 * as tfjs does, so nothing that still references the old values (a clone, a snapshot) sees them change.
 *
 * The optimizer's state stays exactly what tfjs expects: `getWeights`/`setWeights` checkpoints and a later
 * fall back to `applyGradients` keep working. Other optimizers and backends use `applyGradients` unchanged.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { off, on, type EngineFeature } from './report.js'
import { addressOf, asWasm, heapF32, simd, type WasmBackend } from './wasm-heap.js'

interface AdamState {
  learningRate: number
  beta1: number
  beta2: number
  epsilon: number
  accBeta1: tf.Variable
  accBeta2: tf.Variable
  accumulatedFirstMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>
  accumulatedSecondMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>
  incrementIterations(): void
}

export type NamedGradient = { name: string; tensor: tf.Tensor | undefined | null }

let fusedAdamUsable: boolean | undefined

/**
 * Whether this tfjs's Adam has the private state the fused update reads and writes (checked on a fresh
 * optimizer): `learningRate`, `beta1`, `beta2`, `epsilon`, `accBeta1`, `accBeta2`, the moment lists.
 */
export function checkFusedAdam(): EngineFeature {
  const adam = tf.train.adam(1e-3) as unknown as Record<string, unknown>
  try {
    for (const field of ['learningRate', 'beta1', 'beta2', 'epsilon'] as const) {
      if (typeof adam[field] !== 'number')
        return off(`tfjs's AdamOptimizer has no numeric '${field}'; stock update used`)
    }
    for (const field of ['accBeta1', 'accBeta2'] as const) {
      if (!(adam[field] instanceof tf.Variable))
        return off(`tfjs's AdamOptimizer has no '${field}' variable; stock update used`)
    }
    for (const field of ['accumulatedFirstMoment', 'accumulatedSecondMoment'] as const) {
      if (!Array.isArray(adam[field])) return off(`tfjs's AdamOptimizer has no '${field}' list; stock update used`)
    }
    if (typeof adam['incrementIterations'] !== 'function')
      return off("tfjs's AdamOptimizer has no incrementIterations()")
    return on('Adam update in one pass per variable over the wasm heap')
  } finally {
    ;(adam as unknown as tf.Optimizer).dispose()
  }
}

/**
 * Sets an optimizer's learning rate between steps. tfjs has no public setter; `learningRate` is the field
 * every tfjs optimizer that has one reads on each step, so it is written after checking it is there.
 */
export function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  const target = optimizer as unknown as { learningRate?: unknown }
  if (typeof target.learningRate !== 'number') {
    throw new Error(`${optimizer.getClassName()} has no numeric learningRate field to schedule (tfjs changed?)`)
  }
  target.learningRate = learningRate
}

/** `optimizer.applyGradients(grads)`, fused where that pays (see module doc). */
export function applyGradients(optimizer: tf.Optimizer, grads: NamedGradient[]): void {
  // Not `instanceof`: tfjs optimizers duck-type `Symbol.hasInstance`, so every optimizer is an Adam by it.
  // Only an optimizer that runs stock Adam's update gets the fused equivalent.
  const stockAdam = optimizer.applyGradients === tf.AdamOptimizer.prototype.applyGradients && 'accBeta1' in optimizer
  if (stockAdam && tf.getBackend() === 'wasm') fusedAdamUsable ??= checkFusedAdam().on
  if (stockAdam && tf.getBackend() === 'wasm' && fusedAdamUsable) {
    applyAdamWasm(optimizer as unknown as AdamState, grads)
  } else {
    optimizer.applyGradients(grads as Array<{ name: string; tensor: tf.Tensor }>)
  }
}

function applyAdamWasm(adam: AdamState, grads: NamedGradient[]): void {
  const backend = asWasm(tf.backend()) as WasmBackend
  const accBeta1 = adam.accBeta1.dataSync()[0]!
  const accBeta2 = adam.accBeta2.dataSync()[0]!
  const { beta1, beta2, epsilon } = adam
  const step = -adam.learningRate
  grads.forEach(({ name, tensor: gradient }, i) => {
    const value = tf.engine().registeredVariables[name]
    if (!value) throw new Error(`no variable named ${name}`)
    adam.accumulatedFirstMoment[i] ??= {
      originalName: `${name}/m`,
      variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
    }
    adam.accumulatedSecondMoment[i] ??= {
      originalName: `${name}/v`,
      variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
    }
    if (gradient == null) return
    if (value.dtype !== 'float32' || gradient.dtype !== 'float32') {
      throw new Error(`fused Adam needs float32 variables, ${name} is ${value.dtype}`)
    }
    const firstMoment = adam.accumulatedFirstMoment[i]!.variable
    const secondMoment = adam.accumulatedSecondMoment[i]!.variable
    const shape = [...value.shape]
    const mOut = backend.makeOutput(shape, 'float32')
    const vOut = backend.makeOutput(shape, 'float32')
    const wOut = backend.makeOutput(shape, 'float32')
    const kernels = simd(backend)
    if (kernels) {
      const at = (info: tf.TensorInfo) => addressOf(backend, info)
      kernels.adam(
        at(gradient),
        at(firstMoment),
        at(secondMoment),
        at(value),
        at(mOut),
        at(vOut),
        at(wOut),
        value.size,
        beta1,
        1 - beta1,
        beta2,
        1 - beta2,
        1 - accBeta1,
        1 - accBeta2,
        step,
        epsilon
      )
    } else {
      adamJs(backend, gradient, firstMoment, secondMoment, value, mOut, vOut, wOut, adam, accBeta1, accBeta2)
    }
    for (const [variable, info] of [
      [firstMoment, mOut],
      [secondMoment, vOut],
      [value, wOut],
    ] as const) {
      const fresh = tf.engine().makeTensorFromTensorInfo(info)
      variable.assign(fresh)
      fresh.dispose()
    }
  })
  tf.tidy(() => {
    adam.accBeta1.assign(tf.mul(adam.accBeta1, beta1))
    adam.accBeta2.assign(tf.mul(adam.accBeta2, beta2))
  })
  adam.incrementIterations()
}

/** The same update in JS (float64 intermediates), for runtimes without wasm SIMD. */
function adamJs(
  backend: WasmBackend,
  gradient: tf.TensorInfo,
  firstMoment: tf.TensorInfo,
  secondMoment: tf.TensorInfo,
  value: tf.TensorInfo,
  mOut: tf.TensorInfo,
  vOut: tf.TensorInfo,
  wOut: tf.TensorInfo,
  adam: AdamState,
  accBeta1: number,
  accBeta2: number
): void {
  // Views after every allocation: an allocation may grow (and so detach) the heap.
  const [g, m, v, w, m2, v2, w2] = [gradient, firstMoment, secondMoment, value, mOut, vOut, wOut].map((t) =>
    heapF32(backend, t)
  ) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array]
  const { beta1, beta2, epsilon } = adam
  const c1 = 1 - beta1
  const c2 = 1 - beta2
  const d1 = 1 - accBeta1
  const d2 = 1 - accBeta2
  const step = -adam.learningRate
  for (let j = 0; j < g.length; j++) {
    const gj = g[j]!
    const mj = m[j]! * beta1 + gj * c1
    const vj = v[j]! * beta2 + gj * gj * c2
    m2[j] = mj
    v2[j] = vj
    w2[j] = (mj / d1 / (Math.sqrt(vj / d2) + epsilon)) * step + w[j]!
  }
}
