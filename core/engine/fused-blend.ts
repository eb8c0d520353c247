/**
 * `target ← target·d + value·(1 − d)` for many variables at once: the weight average's update. On the wasm
 * backend with SIMD each variable is one pass of the `blend` kernel into a fresh tensor; elsewhere it is tfjs's
 * `add(mul(a, d), mul(w, 1 − d))`, three passes and two temporaries per variable. Both round every product and
 * the sum to float32 in the same order, so they give the same bits (a test holds them to it).
 *
 * The result goes to a fresh tensor that the variable is assigned, as tfjs does, so a clone that shares the old
 * data (the average's swap makes such clones) never sees it change.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { addressOf, asWasm, simd } from './wasm-heap.js'

/** Moves each `targets[i]` towards `values[i]` (same shapes, float32): `t ← t·d + v·(1 − d)`. */
export function blendVariables(targets: readonly tf.Variable[], values: readonly tf.Tensor[], d: number): void {
  if (targets.length !== values.length) throw new Error(`${targets.length} targets but ${values.length} values`)
  targets.forEach((t, i) => {
    const v = values[i]!
    if (t.dtype !== 'float32' || v.dtype !== 'float32' || t.size !== v.size)
      throw new Error(`blend needs float32 tensors of one size, got ${t.dtype}[${t.size}] and ${v.dtype}[${v.size}]`)
  })
  const backend = tf.getBackend() === 'wasm' ? asWasm(tf.backend()) : null
  const kernels = backend && simd(backend)
  if (!backend || !kernels) {
    tf.tidy(() => {
      targets.forEach((t, i) => {
        t.assign(tf.add(tf.mul(t, d), tf.mul(values[i]!, 1 - d)))
      })
    })
    return
  }
  targets.forEach((t, i) => {
    const v = values[i]!
    const out = backend.makeOutput([...t.shape], 'float32')
    // addresses after the allocation: it may have grown the heap (offsets stay valid, views would not)
    kernels.blend(addressOf(backend, t), addressOf(backend, v), addressOf(backend, out), t.size, d, 1 - d)
    const fresh = tf.engine().makeTensorFromTensorInfo(out)
    t.assign(fresh)
    fresh.dispose()
  })
}
