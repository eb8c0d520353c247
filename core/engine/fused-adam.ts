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
import { asWasm, heapF32, type WasmBackend } from './wasm-heap.js'

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

/** `optimizer.applyGradients(grads)`, fused where that pays (see module doc). */
export function applyGradients(optimizer: tf.Optimizer, grads: NamedGradient[]): void {
  // Not `instanceof`: tfjs optimizers duck-type `Symbol.hasInstance`, so every optimizer is an Adam by it.
  // Only an optimizer that runs stock Adam's update gets the fused equivalent.
  const stockAdam = optimizer.applyGradients === tf.AdamOptimizer.prototype.applyGradients && 'accBeta1' in optimizer
  if (stockAdam && tf.getBackend() === 'wasm') {
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
  const k1 = 1 / (1 - accBeta1)
  const k2 = 1 / (1 - accBeta2)
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
    // Views after every allocation: an allocation may grow (and so detach) the heap.
    const g = heapF32(backend, gradient)
    const m = heapF32(backend, firstMoment)
    const v = heapF32(backend, secondMoment)
    const w = heapF32(backend, value)
    const m2 = heapF32(backend, mOut)
    const v2 = heapF32(backend, vOut)
    const w2 = heapF32(backend, wOut)
    const c1 = 1 - beta1
    const c2 = 1 - beta2
    for (let j = 0; j < g.length; j++) {
      const gj = g[j]!
      const mj = m[j]! * beta1 + gj * c1
      const vj = v[j]! * beta2 + gj * gj * c2
      m2[j] = mj
      v2[j] = vj
      w2[j] = w[j]! + (step * (mj * k1)) / (Math.sqrt(vj * k2) + epsilon)
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
