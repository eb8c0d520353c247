/**
 * The convolutions of one ResNet18 training step, layer shape by layer shape, on the wasm engine: forward,
 * filter gradient and input gradient, with this engine's FMA GEMM and with XNNPACK (the GEMM switched off via
 * `setSimdFmaEnabled(false)`, as `bench:train --no-fma` does), in the same process, alternating, on the same
 * threads. Prints milliseconds and GFLOP/s per pass, and the total ratio.
 *
 *   npm run bench:conv [-- --size 64] [--batch 32] [--threads N]
 *
 * Needs relaxed SIMD (Node 22+) for the GEMM side; on older Node both columns are XNNPACK. Runs the GEMM on every
 * thread asked for (`AGEGENDER_GEMM=on` unless set: the trainer's `auto` keeps it to one thread).
 * @module
 */
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { defaultWasmThreads, initEngine } from '../core/engine/index.js'
import { runtimeHasRelaxedSimd, setSimdFmaEnabled } from '../core/engine/simd/kernels.js'

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '32' },
    threads: { type: 'string' },
    'min-ms': { type: 'string', default: '600' },
  },
})
const size = Number(args.size)
const batch = Number(args.batch)
const threads = args.threads === undefined ? defaultWasmThreads() : Number(args.threads)
const minMs = Number(args['min-ms'])
if (!Number.isInteger(size) || size < 32 || size % 32 !== 0) throw new Error('--size must be a multiple of 32')

// the point is the comparison: the GEMM on every thread asked for, unless the caller set AGEGENDER_GEMM
process.env['AGEGENDER_GEMM'] ??= 'on'
const engine = await initEngine({ backend: 'wasm', threads })
console.log(`backend: ${engine.description}`)
console.log(`gemm-conv: ${engine.report.features['gemm-conv']?.detail}`)
if (!runtimeHasRelaxedSimd()) console.log('no relaxed SIMD on this runtime: both columns are XNNPACK')

/** [name, input side, in channels, out channels, kernel, stride, how many per step] for ResNet18 at `size`. */
const s = size
const layers: Array<[string, number, number, number, number, number, number]> = [
  ['stem 7x7/2', s, 3, 64, 7, 2, 1],
  ['layer1 3x3', s / 4, 64, 64, 3, 1, 4],
  ['layer2 3x3/2', s / 4, 64, 128, 3, 2, 1],
  ['layer2 1x1/2', s / 4, 64, 128, 1, 2, 1],
  ['layer2 3x3', s / 8, 128, 128, 3, 1, 3],
  ['layer3 3x3/2', s / 8, 128, 256, 3, 2, 1],
  ['layer3 1x1/2', s / 8, 128, 256, 1, 2, 1],
  ['layer3 3x3', s / 16, 256, 256, 3, 1, 3],
  ['layer4 3x3/2', s / 16, 256, 512, 3, 2, 1],
  ['layer4 1x1/2', s / 16, 256, 512, 1, 2, 1],
  ['layer4 3x3', s / 32, 512, 512, 3, 1, 3],
]

function time(f: () => void): number {
  f()
  const t0 = performance.now()
  let n = 0
  while (performance.now() - t0 < minMs) {
    f()
    n++
  }
  return (performance.now() - t0) / n
}

const totals = { gemm: 0, xnnpack: 0 }
const fmt = (ms: number, flops: number) =>
  `${ms.toFixed(1).padStart(6)} ms ${(flops / ms / 1e6).toFixed(0).padStart(3)} GF`
console.log(
  `batch ${batch}, ${size} px, ${threads} thread${threads === 1 ? '' : 's'}; per call: forward | filter grad | input grad`
)
for (const [name, hw, ci, co, k, stride, count] of layers) {
  const x = tf.randomNormal([batch, hw, hw, ci]) as tf.Tensor4D
  const w = tf.randomNormal([k, k, ci, co]) as tf.Tensor4D
  const pad = 'same'
  const y = tf.conv2d(x, w, stride, pad)
  const dy = tf.randomNormal(y.shape) as tf.Tensor4D
  const flops = 2 * y.size * k * k * ci
  const attrs = { strides: stride, pad, dataFormat: 'NHWC' }
  const passes = {
    forward: () => tf.conv2d(x, w, stride, pad).dispose(),
    filter: () =>
      (
        tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
          ...attrs,
          filterShape: [k, k, ci, co],
        } as unknown as tf.NamedAttrMap) as tf.Tensor
      ).dispose(),
    input: () =>
      (
        tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, {
          ...attrs,
          inputShape: x.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor
      ).dispose(),
  }
  const cells: string[] = []
  for (const side of ['gemm', 'xnnpack'] as const) {
    setSimdFmaEnabled(side === 'gemm')
    // the stem's input gradient is never taken in training
    const ms = [passes.forward, passes.filter, ...(name.startsWith('stem') ? [] : [passes.input])].map(time)
    totals[side] += count * ms.reduce((a, b) => a + b, 0)
    cells.push(`${side.padEnd(7)} ${ms.map((m) => fmt(m, flops)).join(' |')}`)
  }
  setSimdFmaEnabled(true)
  console.log(`${name.padEnd(13)} x${count}  ${cells.join('   ')}`)
  tf.dispose([x, w, y, dy])
}
console.log(
  `all convolutions of a step: gemm ${totals.gemm.toFixed(0)} ms, XNNPACK ${totals.xnnpack.toFixed(0)} ms, ratio ${(totals.xnnpack / totals.gemm).toFixed(2)}x`
)
