/**
 * The data-parallel step (worker_threads, gradients averaged through a SharedArrayBuffer): it computes what
 * a single thread computes for the same shards, averaged in replica order; it is deterministic for a seed and
 * a replica count; it copes with batches smaller than the replica count. Real workers, real wasm engine.
 */
import * as tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { applyGradients, initEngine } from '../../core/engine/index.js'
import { runtimeHasRelaxedSimd, setSimdSwitches } from '../../core/engine/simd/kernels.js'
import { createModel } from '../../core/model.js'
import { shardSizes, type ParallelTrainStep } from '../../trainer/parallel-step.js'
import {
  batchGradients,
  createTrainStep,
  lossSettings,
  type StepLosses,
  type TrainStepOptions,
} from '../../trainer/step.js'

const SIZE = 32
const model = () => createModel({ inputSize: SIZE, seed: 3, width: 8 })
const open: ParallelTrainStep[] = []

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
})
afterAll(async () => {
  await Promise.all(open.map((s) => s.close()))
})

function batch(n: number, seed: number) {
  return tf.tidy(() => {
    const x = tf.randomNormal([n, SIZE, SIZE, 3], 0, 1, 'float32', seed) as tf.Tensor4D
    const age = tf.randomUniform([n], 1, 90, 'float32', seed + 1) as tf.Tensor1D
    const gender = tf.cast(tf.greater(tf.randomUniform([n], 0, 1, 'float32', seed + 2), 0.5), 'float32')
    return { x, age, gender }
  })
}

const weightsOf = (m: tf.LayersModel) => m.weights.map((w) => w.read().dataSync().slice() as Float32Array)

function train(replicas: number, batches: Array<ReturnType<typeof batch>>, loss: TrainStepOptions = {}) {
  const m = model()
  const optimizer = tf.train.adam(1e-3)
  const step = createTrainStep(m, optimizer, { ...loss, replicas })
  if (replicas > 1) open.push(step as ParallelTrainStep)
  const losses: StepLosses[] = batches.map((b) => step(b.x, b.age, b.gender))
  return { m, optimizer, step, losses, weights: weightsOf(m) }
}

it('splits a batch into shards differing by at most one row', () => {
  expect(shardSizes(32, 2)).toEqual([16, 16])
  expect(shardSizes(7, 3)).toEqual([3, 2, 2])
  expect(shardSizes(1, 2)).toEqual([1, 0])
})

// Forced off, the SIMD switches must reach the workers (module state is per thread): a replica still using FMA,
// or SIMD instead of the JS loops, rounds its BatchNorm gradient sums differently, and the weights are then not
// bit-identical to the one-thread run.
it.for([
  ['', { kernels: true, fma: true }],
  [', FMA forced off in every replica', { kernels: true, fma: false }],
  [', SIMD kernels forced off in every replica', { kernels: false, fma: true }],
] as const)('equals one thread computing each shard and averaging in replica order%s', ([, switches], ctx) => {
  ctx.skip(
    !switches.fma && !runtimeHasRelaxedSimd(),
    'this runtime lacks relaxed SIMD (Node 22+ has it): no FMA to turn off'
  )
  setSimdSwitches(switches)
  try {
    equalsOneThread()
  } finally {
    setSimdSwitches({ kernels: true, fma: true })
  }
})

function equalsOneThread() {
  const b = batch(6, 11)
  // non-default loss settings, so a worker that ignored them would disagree
  const loss = { genderWeight: 3, genderSmoothing: 0.1 }
  const parallel = train(2, [b], loss)
  // The reference: two identical models, one per shard, on this thread.
  const [a, c] = [model(), model()]
  const optimizer = tf.train.adam(1e-3)
  const sizes = shardSizes(6, 2)
  const shard = (m: tf.LayersModel, from: number, n: number) =>
    batchGradients(
      m,
      optimizer,
      tf.slice(b.x, from, n),
      tf.slice(b.age, from, n),
      tf.slice(b.gender, from, n),
      lossSettings(loss)
    )
  const g0 = shard(a, 0, sizes[0]!)
  const g1 = shard(c, sizes[0]!, sizes[1]!)
  const scaled = (values: Float32Array, n: number) => Float32Array.from(values, (v) => v * (n / 6))
  const average = (x: Float32Array, y: Float32Array) => Float32Array.from(x, (v, i) => v + y[i]!)
  applyGradients(
    optimizer,
    g0.variables.map((v, i) => ({
      name: v.name,
      tensor: tf.tensor(
        average(
          scaled(g0.grads[v.name]!.dataSync() as Float32Array, sizes[0]!),
          scaled(g1.grads[g1.variables[i]!.name]!.dataSync() as Float32Array, sizes[1]!)
        ),
        v.shape
      ),
    }))
  )
  a.nonTrainableWeights.forEach((w, i) => {
    const mine = scaled(w.read().dataSync() as Float32Array, sizes[0]!)
    const theirs = scaled(c.nonTrainableWeights[i]!.read().dataSync() as Float32Array, sizes[1]!)
    w.write(tf.tensor(average(mine, theirs), w.shape as number[]))
  })
  const reference = weightsOf(a)
  expect(parallel.weights.length).toBe(reference.length)
  parallel.weights.forEach((w, i) => {
    expect(Array.from(w), a.weights[i]!.originalName).toEqual(Array.from(reference[i]!))
  })
  const loss0 = g0.losses.dataSync()[0]!
  const loss1 = g1.losses.dataSync()[0]!
  expect(parallel.losses[0]!.loss).toBeCloseTo((loss0 * sizes[0]! + loss1 * sizes[1]!) / 6, 5)
}

it('keeps no tensors of a step alive on the main thread (BatchNorm statistics included)', () => {
  const b = batch(4, 31)
  const m = model()
  const step = createTrainStep(m, tf.train.adam(1e-3), { replicas: 2 })
  open.push(step as ParallelTrainStep)
  step(b.x, b.age, b.gender) // the first step creates Adam's moments
  const before = tf.memory().numTensors
  step(b.x, b.age, b.gender)
  step(b.x, b.age, b.gender)
  expect(tf.memory().numTensors).toBe(before)
})

it('is deterministic for a seed and replica count, and copes with batches smaller than the replica count', async () => {
  const batches = [batch(5, 21), batch(5, 22), batch(2, 23)]
  const first = train(3, batches)
  const second = train(3, batches)
  expect(first.losses).toEqual(second.losses)
  first.weights.forEach((w, i) => {
    expect(Array.from(w)).toEqual(Array.from(second.weights[i]!))
  })
  for (const l of first.losses) expect(Number.isFinite(l.loss)).toBe(true)
  // and it trains: the weights moved
  expect(first.weights.some((w, i) => w.some((v, j) => v !== weightsOf(model())[i]![j]))).toBe(true)
})
