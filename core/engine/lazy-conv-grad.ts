/**
 * Lets gradients skip the input gradient of a convolution whose input needs none (the stem convolution,
 * whose input is the image).
 *
 * tfjs-layers runs every convolution through `tf.fused.conv2d`, which records a custom gradient that
 * computes the input and filter gradients together, even when the input is not a function of any trained
 * variable. For ResNet18 that wasted input gradient of the 7x7 stem is the most expensive convolution
 * gradient of the step. A plain `tf.conv2d` computes the same forward values and has a registered gradient
 * whose parts run only when needed, so a fused call with nothing to fuse (no bias, linear activation) is
 * routed to it while a gradient tape is recording. Everything else goes to the original function, and so does
 * every call while another backend than wasm is active: the patch serves the wasm backend only.
 *
 * Needs a writable `tf.fused` (tfjs's CommonJS build, which Node resolves and esbuild's `platform: 'node'`
 * picks through `main`); an ES module namespace is read-only, and then the patch reports itself off.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { type EngineFeature, off, on } from './report.js'

type FusedConv2D = typeof tf.fused.conv2d
type FusedArgs = Parameters<FusedConv2D>[0]

let installed = false

const ON = on('tf.fused.conv2d routes bias-free, linear calls under a gradient tape to tf.conv2d')

/** Installs the hook once; the result says whether it is active and, if not, why. */
export function installLazyConvGradients(): EngineFeature {
  if (installed) return ON
  const fused = tf.fused as { conv2d: FusedConv2D }
  const original = fused.conv2d
  if (typeof original !== 'function') return off('this tfjs has no tf.fused.conv2d')
  const lazy = ((args: FusedArgs) => {
    const plain =
      args.bias == null &&
      (args.activation == null || args.activation === 'linear') &&
      args.preluActivationWeights == null &&
      tf.getBackend() === 'wasm' &&
      (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0
    if (!plain) return original(args)
    return tf.conv2d(
      args.x,
      args.filter,
      args.strides,
      args.pad,
      args.dataFormat ?? 'NHWC',
      args.dilations ?? [1, 1],
      args.dimRoundingMode
    )
  }) as FusedConv2D
  try {
    fused.conv2d = lazy
  } catch (error) {
    return off(`tf.fused is read-only in this build (${error instanceof Error ? error.message : String(error)})`)
  }
  installed = fused.conv2d === lazy
  return installed ? ON : off('tf.fused is read-only in this build (the assignment did not take)')
}
