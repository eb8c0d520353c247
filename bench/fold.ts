/**
 * `npm run bench:fold`: what the served form of the model ({@link ../core/inference-model.ts}) saves in the
 * model stage of a prediction, with test-time flip averaging as served:
 *
 * - `trained, 2 passes`: the trained ResNet18 (BatchNorm as separate ops), image and mirror image as two calls
 *   (the predictor before this change);
 * - `trained, 1 batch`: the same model, image and mirror image as one batch of 2n;
 * - `folded, 1 batch`: BatchNorm folded into the convolutions, ReLU fused, one batch of 2n (what is served).
 *
 *   tsx bench/fold.ts [--size 64] [--batches 1,16] [--repeats 15] [--backend auto|wasm|cpu|...] [--no-fma]
 *
 * The variants run interleaved, repeat after repeat, so load from other processes hits them alike. Printed:
 * median wall milliseconds per call and per image, the CPU milliseconds of this process (steadier on a shared
 * machine), and each variant's speed-up over the first, from the same run. The largest output difference
 * between variants is printed too (it must stay ~1e-5).
 * @module
 */
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { initEngine, type BackendChoice } from '../core/engine/index.js'
import { setSimdFmaEnabled } from '../core/engine/simd/kernels.js'
import { toInferenceModel } from '../core/inference-model.js'
import { createModel } from '../core/model.js'
import { randomizeBatchNorms } from '../support/models.js'

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '64' },
    batches: { type: 'string', default: '1,16' },
    repeats: { type: 'string', default: '15' },
    backend: { type: 'string' },
    'no-fma': { type: 'boolean', default: false },
  },
})
// Without FMA the convolutions run on XNNPACK instead of the engine's GEMM (Node 22+): two runs compare them.
if (args['no-fma']) setSimdFmaEnabled(false)
const size = Number(args.size)
const repeats = Number(args.repeats)
const engine = await initEngine({ backend: (args.backend ?? process.env.AGEGENDER_BACKEND ?? 'auto') as BackendChoice })
console.log(`convolutions: ${engine.report.features['gemm-conv']?.on ? 'our FMA GEMM' : "XNNPACK's"}`)
console.log(`backend: ${engine.description}; ResNet18 (width 64) at ${size} px, flip averaging, median of ${repeats}`)

const trained = createModel({ inputSize: size, seed: 1 })
randomizeBatchNorms(trained, 2)
const { model: folded, folded: report } = await toInferenceModel(trained)
console.log(`folded ${report.batchNorms} BatchNorm layers, fused ${report.relus} ReLUs`)

type Variant = { name: string; run: (x: tf.Tensor4D) => tf.Tensor }
const twoPasses = (m: tf.LayersModel) => (x: tf.Tensor4D) => {
  const [a1] = m.predict(x) as tf.Tensor[]
  const [a2] = m.predict(tf.reverse(x, 2)) as tf.Tensor[]
  return a1!.add(a2!).div(2)
}
const oneBatch = (m: tf.LayersModel) => (x: tf.Tensor4D) => {
  const [a] = m.predict(tf.concat([x, tf.reverse(x, 2)])) as tf.Tensor[]
  return a!.reshape([2, x.shape[0]]).mean(0)
}
const variants: Variant[] = [
  { name: 'trained, 2 passes', run: twoPasses(trained) },
  { name: 'trained, 1 batch', run: oneBatch(trained) },
  { name: 'folded, 1 batch', run: oneBatch(folded) },
]

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

for (const batch of args.batches.split(',').map(Number)) {
  const x = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 3) as tf.Tensor4D
  const wall = variants.map(() => [] as number[])
  const cpu = variants.map(() => [] as number[])
  const outputs: Float32Array[] = []
  for (let r = -2; r < repeats; r++) {
    variants.forEach((v, i) => {
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      const y = tf.tidy(() => v.run(x))
      const data = y.dataSync() as Float32Array
      const ms = performance.now() - t0
      const c = process.cpuUsage(c0)
      y.dispose()
      if (r < 0) {
        outputs[i] = data // the first two repeats warm up, and give the outputs to compare
        return
      }
      wall[i]!.push(ms)
      cpu[i]!.push((c.user + c.system) / 1000)
    })
  }
  x.dispose()
  const base = median(wall[0]!)
  const baseCpu = median(cpu[0]!)
  console.log(`\nbatch ${batch}: ${2 * batch} images through the network (each with its mirror image)`)
  console.log('variant               ms/call  ms/image   cpu ms/call  speed-up (wall, cpu)  max |Δ age|')
  variants.forEach((v, i) => {
    const w = median(wall[i]!)
    const c = median(cpu[i]!)
    const diff = Math.max(...outputs[i]!.map((a, j) => Math.abs(a - outputs[0]![j]!)))
    console.log(
      `${v.name.padEnd(20)} ${w.toFixed(1).padStart(8)} ${(w / batch).toFixed(2).padStart(9)} ${c.toFixed(1).padStart(13)}` +
        `  ${(base / w).toFixed(2).padStart(8)}× ${(baseCpu / c).toFixed(2).padStart(6)}×        ${diff.toExponential(1)}`
    )
  })
}
trained.dispose()
folded.dispose()
