/**
 * Registers this project's kernels for the wasm backend: the convolution gradients (see `wasm-conv.ts`) and
 * faster replacements for stock kernels that dominated a training step (see `wasm-memory.ts`).
 *
 * Call before `tf.setBackend('wasm')` (or any time: nothing here needs a setup hook). Idempotent.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { conv2D, conv2DBackpropFilter, conv2DBackpropInput, fusedConv2D } from './wasm-conv.js'
import type { KernelArgs } from './wasm-heap.js'
import { BATCH_NORM_GRAD_KERNEL } from './batch-norm.js'
import {
  batchNormTrainingGrad,
  identity,
  maxPoolGrad,
  mean,
  padV2,
  setStockKernel,
  slice,
  sum,
  tile,
} from './wasm-memory.js'

type Kernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]

/** Kernel name -> implementation; exported so tests can list what they must cover. */
export const WASM_TRAINING_KERNELS: Readonly<Record<string, Kernel>> = {
  Conv2D: conv2D,
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  FusedConv2D: fusedConv2D,
  Identity: identity,
  MaxPoolGrad: maxPoolGrad,
  Mean: mean,
  PadV2: padV2,
  Slice: slice,
  Sum: sum,
  Tile: tile,
  [BATCH_NORM_GRAD_KERNEL]: batchNormTrainingGrad,
}

let registered = false

export function registerWasmTrainingKernels(): void {
  if (registered) return
  registered = true
  for (const [kernelName, kernel] of Object.entries(WASM_TRAINING_KERNELS)) {
    const existing = tf.getKernel(kernelName, 'wasm')
    setStockKernel(kernelName, existing)
    if (existing) tf.unregisterKernel(kernelName, 'wasm')
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernel as tf.KernelFunc })
  }
}
