/**
 * Lets gradients skip the input gradient of a convolution whose input needs none (the stem convolution,
 * whose input is the image).
 *
 * tfjs-layers runs every `Conv2D` layer through `tf.fused.conv2d`, which records a custom gradient that
 * computes the input and filter gradients together, even when the input is not a function of any trained
 * variable. For ResNet18 that wasted input gradient of the 7x7 stem is the most expensive convolution
 * gradient of the step. A plain `tf.conv2d` computes the same forward values and has a registered gradient
 * whose parts run only when needed, so a `Conv2D` layer with nothing to fuse (no bias, linear activation,
 * channels last) calls it instead while a gradient tape is recording. Everything else runs the layer's own
 * `call`, and so does every call while another backend than wasm is active: the patch serves wasm only.
 *
 * Installed on `Conv2D.prototype` (a class prototype, writable in tfjs's CommonJS and ES module builds alike;
 * patching `tf.fused.conv2d` itself fails in an ES module bundle, where `tf.fused` is a read-only namespace).
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { type EngineFeature, off, on } from './report.js'

/** The fields of tfjs-layers' `Conv2D` read here (tfjs-layers 4.22 `layers/convolutional.js`). */
interface Conv2DLayer {
  rank: number
  bias: tf.LayerVariable | null
  kernel: tf.LayerVariable
  activation: { getClassName(): string } | null
  dataFormat: string
  padding: string
  strides: number[]
  dilationRate: number[]
}

type Call = (this: Conv2DLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor

const ON = on(
  'Conv2D layers without bias or activation call tf.conv2d under a gradient tape (input gradient only when needed)'
)

let installed = false

/** Installs the patch once; the result says whether it is active and, if not, why. */
export function installLazyConvGradients(): EngineFeature {
  if (installed) return ON
  const sample = tf.layers.conv2d({ filters: 1, kernelSize: 1, useBias: false }) as unknown as Record<string, unknown>
  const proto = Object.getPrototypeOf(sample) as { call: Call }
  if (typeof proto.call !== 'function') return off('this tfjs-layers has no Conv2D.prototype.call')
  for (const field of ['rank', 'bias', 'activation', 'dataFormat', 'padding', 'strides', 'dilationRate'] as const) {
    if (!(field in sample)) return off(`this tfjs-layers Conv2D has no '${field}' field`)
  }
  const state = tf.engine().state as unknown as { gradientDepth?: unknown }
  if (typeof state.gradientDepth !== 'number') return off("this tfjs engine has no numeric 'gradientDepth'")
  const stock = proto.call
  proto.call = function (this: Conv2DLayer, inputs, kwargs) {
    const plain =
      tf.getBackend() === 'wasm' &&
      this.rank === 2 &&
      this.bias == null &&
      (this.activation == null || this.activation.getClassName() === 'linear') &&
      this.dataFormat === 'channelsLast' &&
      (this.padding === 'same' || this.padding === 'valid') &&
      (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0
    const x = Array.isArray(inputs) ? inputs[0] : inputs
    if (!plain || !x || x.rank !== 4) return stock.call(this, inputs, kwargs)
    const kernel = this.kernel.read() as tf.Tensor4D
    return tf.conv2d(
      x as tf.Tensor4D,
      kernel,
      this.strides as [number, number],
      this.padding as 'same' | 'valid',
      'NHWC',
      this.dilationRate as [number, number]
    )
  } as Call
  installed = true
  return ON
}
