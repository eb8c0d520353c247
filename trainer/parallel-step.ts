/**
 * Data-parallel training step over `worker_threads`: the same {@link TrainStep} signature as the
 * single-thread step, with the batch sharded inside.
 *
 * - The main thread is replica 0; `replicas - 1` workers each hold an identical model replica and optimizer.
 *   They are started on the first call (so weights and optimizer state restored from a checkpoint after
 *   `createTrainStep` are what they copy).
 * - Shard k gets rows `[start_k, start_k + n_k)` of the batch (sizes differ by at most one).
 * - Each replica writes its gradients, scaled by `n_k / batch`, and its BatchNorm moving statistics to its slot
 *   of one SharedArrayBuffer. The average is summed in replica order 0..N-1 for every element (each replica
 *   sums one stripe of the elements), so the result does not depend on thread timing: a run is deterministic
 *   for a seed and a replica count.
 * - Every replica applies the same averaged gradients with its own Adam (the same update everywhere, so the
 *   weights stay identical without being copied), and takes the averaged moving statistics.
 * - Synchronization is `Atomics.wait`/`notify` on the shared buffer (the step is synchronous, as the
 *   single-thread one is); a replica that fails puts its message in the buffer and the step throws it.
 *
 * BatchNorm normalizes each shard with that shard's own statistics (as PyTorch's DistributedDataParallel does
 * without SyncBatchNorm): with N replicas, a batch of B behaves like N batches of B/N for normalization.
 * @module
 */
import { Worker } from 'node:worker_threads'
import * as tf from '@tensorflow/tfjs'
import { applyGradients } from '../core/engine/index.js'
import { asWasm, heapF32 } from '../core/engine/wasm-heap.js'
import { type SimdSwitches, setSimdSwitches, simdSwitches } from '../core/engine/simd/kernels.js'
import { batchGradients, type LossSettings, type StepLosses, type TrainStep } from './step.js'

/** Control words (Int32 indices) in the shared buffer. */
const C = {
  GEN: 0,
  CMD: 1,
  B1_COUNT: 2,
  B1_GEN: 3,
  B2_COUNT: 4,
  B2_GEN: 5,
  READY: 6,
  ERROR: 7,
  BATCH: 8,
  CONTROL_WORDS: 16,
}
const CMD_STEP = 1
const CMD_EXIT = 2
const ERROR_BYTES = 4096
/** How long one wait blocks before checking the error flag again. */
const WAIT_MS = 200
const START_TIMEOUT_MS = 300_000

/** Shard sizes: `batch` rows split into `replicas` runs differing by at most one, larger first. */
export function shardSizes(batch: number, replicas: number): number[] {
  return Array.from({ length: replicas }, (_, k) => Math.floor(batch / replicas) + (k < batch % replicas ? 1 : 0))
}

/** Offsets into the shared buffer; computed identically on both sides from the same sizes. */
export interface Layout {
  readonly replicas: number
  /** floats per image, and the most images one shard may hold */
  readonly imageFloats: number
  readonly shardCapacity: number
  /** trainable floats, moving-statistics floats */
  readonly gradFloats: number
  readonly statFloats: number
}

export function regions(layout: Layout) {
  const { replicas, imageFloats, shardCapacity, gradFloats, statFloats } = layout
  const slot = gradFloats + statFloats
  let at = C.CONTROL_WORDS * 4 + ERROR_BYTES + 8 * 4 // control, error text, lr and spare float64s
  const take = (bytes: number) => {
    const start = at
    at += Math.ceil(bytes / 16) * 16
    return start
  }
  const inputs = Array.from({ length: replicas }, () => ({
    x: take(shardCapacity * imageFloats * 4),
    age: take(shardCapacity * 4),
    gender: take(shardCapacity * 4),
  }))
  const slots = Array.from({ length: replicas }, () => take(slot * 4))
  const average = take(slot * 4)
  const losses = take(replicas * 3 * 8)
  return { inputs, slots, average, losses, slot, bytes: at, lr: C.CONTROL_WORDS * 4 + ERROR_BYTES }
}

/** One replica's view of the shared buffer and the synchronization on it. */
export class Shared {
  readonly ctrl: Int32Array
  readonly r: ReturnType<typeof regions>
  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly layout: Layout
  ) {
    this.ctrl = new Int32Array(buffer, 0, C.CONTROL_WORDS)
    this.r = regions(layout)
  }

  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.buffer, offset, length)
  }
  get learningRate(): number {
    return new Float64Array(this.buffer, this.r.lr, 1)[0]!
  }
  set learningRate(lr: number) {
    new Float64Array(this.buffer, this.r.lr, 1)[0] = lr
  }
  losses(): Float64Array {
    return new Float64Array(this.buffer, this.r.losses, this.layout.replicas * 3)
  }

  fail(message: string): void {
    const bytes = new TextEncoder().encode(message).slice(0, ERROR_BYTES)
    new Uint8Array(this.buffer, C.CONTROL_WORDS * 4, ERROR_BYTES).fill(0).set(bytes)
    Atomics.store(this.ctrl, C.ERROR, 1)
    for (const word of [C.GEN, C.B1_GEN, C.B2_GEN, C.READY]) Atomics.notify(this.ctrl, word)
  }
  throwIfFailed(): void {
    if (Atomics.load(this.ctrl, C.ERROR) === 0) return
    const bytes = new Uint8Array(this.buffer, C.CONTROL_WORDS * 4, ERROR_BYTES)
    const end = bytes.indexOf(0)
    throw new Error(
      `data-parallel replica failed: ${new TextDecoder().decode(bytes.slice(0, end < 0 ? undefined : end))}`
    )
  }
  /** Blocks while `ctrl[word] === value`. */
  waitWhile(word: number, value: number): void {
    while (Atomics.load(this.ctrl, word) === value) {
      this.throwIfFailed()
      Atomics.wait(this.ctrl, word, value, WAIT_MS)
    }
    this.throwIfFailed()
  }
  /** All replicas meet here (generation barrier on two words). */
  barrier(count: number, gen: number): void {
    const g = Atomics.load(this.ctrl, gen)
    if (Atomics.add(this.ctrl, count, 1) === this.layout.replicas - 1) {
      Atomics.store(this.ctrl, count, 0)
      Atomics.add(this.ctrl, gen, 1)
      Atomics.notify(this.ctrl, gen)
    } else {
      this.waitWhile(gen, g)
    }
  }
}

/** Sizes of the per-replica slot for a model: trainable floats, then moving statistics. */
export function modelFloats(model: tf.LayersModel): { gradFloats: number; statFloats: number } {
  const count = (ws: tf.LayerVariable[]) =>
    ws.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0)
  return { gradFloats: count(model.trainableWeights), statFloats: count(model.nonTrainableWeights) }
}

/**
 * Everything one replica does in a step after its forward/backward (`grads`, `n` rows of `batch`): publish,
 * average its stripe, apply. Runs identically on the main thread and in the workers.
 */
export function exchangeAndApply(
  shared: Shared,
  k: number,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  result: Gradients,
  n: number,
  batch: number
): void {
  const { gradFloats, statFloats, replicas } = shared.layout
  const slotFloats = gradFloats + statFloats
  const weight = n / batch
  // Published unscaled (a plain copy out of the tensor's memory); the sum below scales each replica's values,
  // rounding each product to float32 as storing it scaled here would, so the sums are the same bits.
  const mine = shared.f32(shared.r.slots[k]!, slotFloats)
  let at = 0
  for (const v of result.variables) {
    const g = result.grads[v.name]
    if (g) mine.set(valuesOf(g), at)
    else mine.fill(0, at, at + v.size)
    at += v.size
  }
  for (const w of model.nonTrainableWeights) {
    const values = valuesOf(w.read())
    mine.set(values, at)
    at += values.length
  }
  const losses = result.losses.dataSync()
  const lossSlots = shared.losses()
  for (let j = 0; j < 3; j++) lossSlots[k * 3 + j] = losses[j]! * weight
  tf.dispose(result.grads)
  result.losses.dispose()

  shared.barrier(C.B1_COUNT, C.B1_GEN)
  // This replica's stripe of the average, summed in replica order (the same order whoever sums it).
  const stripe = Math.ceil(slotFloats / replicas)
  const from = Math.min(slotFloats, k * stripe)
  const to = Math.min(slotFloats, from + stripe)
  const average = shared.f32(shared.r.average, slotFloats)
  const slots = shared.r.slots.map((offset) => shared.f32(offset, slotFloats))
  const weights = shardSizes(batch, replicas).map((size) => size / batch)
  for (let i = from; i < to; i++) {
    let sum = 0
    for (let r = 0; r < replicas; r++) sum += Math.fround(slots[r]![i]! * weights[r]!)
    average[i] = sum
  }
  shared.barrier(C.B2_COUNT, C.B2_GEN)

  at = 0
  // wasm copies a tensor's values into its heap; cpu keeps the array, which the next step overwrites
  const copy =
    tf.getBackend() === 'wasm'
      ? (from: number, to: number) => average.subarray(from, to)
      : (from: number, to: number) => average.slice(from, to)
  const grads = result.variables.map((v) => {
    const tensor = tf.tensor(copy(at, at + v.size), v.shape)
    at += v.size
    return { name: v.name, tensor }
  })
  try {
    applyGradients(optimizer, grads)
  } finally {
    tf.dispose(grads.map((g) => g.tensor))
  }
  for (const w of model.nonTrainableWeights) {
    const size = w.shape.reduce((a: number, b) => a * (b ?? 1), 1)
    // write() makes the variable share the tensor's data (another reference), so the tensor itself is disposed
    const stats = tf.tensor(copy(at, at + size), w.shape as number[])
    w.write(stats)
    stats.dispose()
    at += size
  }
}

/**
 * A float32 tensor's values without a copy where the backend allows: a view of the wasm heap (valid until the
 * next allocation, so use it at once), the cpu backend's own array; `dataSync()` elsewhere.
 */
function valuesOf(t: tf.Tensor): Float32Array {
  if (tf.getBackend() === 'wasm') return heapF32(asWasm(tf.backend()), t)
  return t.dataSync() as Float32Array
}

type Gradients = { variables: tf.Variable[]; grads: tf.NamedTensorMap; losses: tf.Tensor1D }

/** One shard's gradients; a shard with no rows (batch smaller than the replica count) contributes zeros. */
function shardGradients(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  loss: LossSettings,
  n: number,
  inputs: () => [tf.Tensor, tf.Tensor, tf.Tensor]
): Gradients {
  if (n === 0)
    return { variables: model.trainableWeights.map((w) => w.read() as tf.Variable), grads: {}, losses: tf.zeros([3]) }
  const [x, age, gender] = tf.tidy(inputs)
  try {
    return batchGradients(model, optimizer, x as tf.Tensor4D, age as tf.Tensor1D, gender, loss)
  } finally {
    tf.dispose([x, age, gender])
  }
}

/** What a worker needs to build its replica (structured-cloned into `workerData`). */
export interface ReplicaInit {
  readonly k: number
  readonly buffer: SharedArrayBuffer
  readonly layout: Layout
  readonly backend: string
  /** The main thread's SIMD switches (e.g. `bench:train --no-fma`): module state is per thread. */
  readonly simd: SimdSwitches
  readonly topology: object
  readonly weights: Float32Array[]
  readonly adam: { learningRate: number; beta1: number; beta2: number; epsilon: number }
  readonly adamState: { iterations: number; moments: Float32Array[] } | null
  readonly loss: LossSettings
  readonly imageShape: number[]
}

interface AdamFields {
  learningRate: number
  beta1: number
  beta2: number
  epsilon: number
  iterations: number
  accumulatedFirstMoment?: Array<{ variable: tf.Variable } | undefined>
  accumulatedSecondMoment?: Array<{ variable: tf.Variable } | undefined>
}

export type ParallelTrainStep = TrainStep & { close(): Promise<void> }

/**
 * The data-parallel step for `replicas` ≥ 2 (see the module doc). Only Adam (tfjs's own) is supported: each
 * worker builds the same optimizer from its settings.
 */
export function createParallelTrainStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  loss: LossSettings,
  replicas: number
): ParallelTrainStep {
  if (!Number.isInteger(replicas) || replicas < 2) throw new Error(`replicas must be an integer ≥ 2, got ${replicas}`)
  const adam = optimizer as unknown as AdamFields
  if (optimizer.getClassName() !== 'Adam')
    throw new Error(`data-parallel training supports Adam only, got ${optimizer.getClassName()}`)
  if (tf.getBackend() !== 'wasm' && tf.getBackend() !== 'cpu') {
    throw new Error(`data-parallel workers are for the CPU backends (wasm, cpu), not ${tf.getBackend()}`)
  }
  let shared: Shared | undefined
  let workers: Worker[] = []

  const start = (x: tf.Tensor4D) => {
    const imageShape = x.shape.slice(1)
    const layout: Layout = {
      replicas,
      imageFloats: imageShape.reduce((a, b) => a * b, 1),
      shardCapacity: Math.ceil(x.shape[0] / replicas),
      ...modelFloats(model),
    }
    shared = new Shared(new SharedArrayBuffer(regions(layout).bytes), layout)
    const trainable = model.trainableWeights.map((w) => w.read())
    const first = adam.accumulatedFirstMoment ?? []
    const second = adam.accumulatedSecondMoment ?? []
    const hasState = trainable.length > 0 && trainable.every((_, i) => first[i] && second[i])
    const base: Omit<ReplicaInit, 'k'> = {
      buffer: shared.buffer,
      layout,
      backend: tf.getBackend(),
      simd: simdSwitches(),
      topology: model.toJSON(null, false) as object,
      weights: model.weights.map((w) => w.read().dataSync() as Float32Array),
      adam: { learningRate: adam.learningRate, beta1: adam.beta1, beta2: adam.beta2, epsilon: adam.epsilon },
      adamState: hasState
        ? {
            iterations: adam.iterations,
            moments: [...first, ...second].map((m) => m!.variable.dataSync() as Float32Array),
          }
        : null,
      loss,
      imageShape,
    }
    const entry = new URL('./replica-worker.mjs', import.meta.url)
    workers = Array.from({ length: replicas - 1 }, (_, i) => {
      const worker = new Worker(entry, { workerData: { ...base, k: i + 1 } satisfies ReplicaInit })
      worker.unref()
      worker.on('error', (error) => shared!.fail(error instanceof Error ? error.message : String(error)))
      return worker
    })
    // Workers build their replicas asynchronously; wait until all say ready (a worker that cannot even load
    // its module never reports, hence the deadline).
    const deadline = performance.now() + START_TIMEOUT_MS
    for (;;) {
      const ready = Atomics.load(shared.ctrl, C.READY)
      if (ready === replicas - 1) break
      shared.throwIfFailed()
      if (performance.now() > deadline)
        throw new Error(`data-parallel workers did not start within ${START_TIMEOUT_MS / 1000} s`)
      Atomics.wait(shared.ctrl, C.READY, ready, WAIT_MS)
    }
  }

  const step: TrainStep = (x, age, gender) => {
    if (!shared) start(x)
    const s = shared!
    const batch = x.shape[0]
    const sizes = shardSizes(batch, replicas)
    if (sizes[0]! > s.layout.shardCapacity || x.shape.slice(1).reduce((a, b) => a * b, 1) !== s.layout.imageFloats) {
      throw new Error(
        `data-parallel step: batch ${x.shape.join('x')} does not fit the first batch's layout (batches may only shrink)`
      )
    }
    const xs = x.dataSync() as Float32Array
    const ages = age.dataSync()
    const genders = gender.dataSync()
    let row = sizes[0]!
    for (let k = 1; k < replicas; k++) {
      const n = sizes[k]!
      const input = s.r.inputs[k]!
      s.f32(input.x, n * s.layout.imageFloats).set(
        xs.subarray(row * s.layout.imageFloats, (row + n) * s.layout.imageFloats)
      )
      s.f32(input.age, n).set(ages.subarray(row, row + n))
      s.f32(input.gender, n).set(genders.subarray(row, row + n))
      row += n
    }
    s.learningRate = adam.learningRate
    Atomics.store(s.ctrl, C.BATCH, batch)
    Atomics.store(s.ctrl, C.CMD, CMD_STEP)
    Atomics.add(s.ctrl, C.GEN, 1)
    Atomics.notify(s.ctrl, C.GEN)
    const n0 = sizes[0]!
    const result = shardGradients(model, optimizer, loss, n0, () => [
      tf.slice(x, 0, n0),
      tf.slice(tf.reshape(age, [batch]), 0, n0),
      tf.slice(tf.reshape(gender, [batch]), 0, n0),
    ])
    try {
      exchangeAndApply(s, 0, model, optimizer, result, n0, batch)
    } catch (error) {
      s.fail(error instanceof Error ? error.message : String(error))
      throw error
    }
    const l = s.losses()
    const sum = (j: number) => {
      let total = 0
      for (let k = 0; k < replicas; k++) total += l[k * 3 + j]!
      return total
    }
    return { loss: sum(0), ageLoss: sum(1), genderLoss: sum(2) } satisfies StepLosses
  }

  return Object.assign(step, {
    async close() {
      if (!shared) return
      Atomics.store(shared.ctrl, C.CMD, CMD_EXIT)
      Atomics.add(shared.ctrl, C.GEN, 1)
      Atomics.notify(shared.ctrl, C.GEN)
      await Promise.all(
        workers.map(
          (w) =>
            new Promise((resolve) => {
              w.once('exit', resolve)
              w.ref()
            })
        )
      )
      workers = []
      shared = undefined
    },
  })
}

/** The worker side: builds the replica, then runs steps until told to exit. */
export async function runReplica(init: ReplicaInit): Promise<void> {
  const shared = new Shared(init.buffer, init.layout)
  try {
    const { initEngine } = await import('../core/engine/index.js')
    setSimdSwitches(init.simd)
    await initEngine({ backend: init.backend as never })
    const model = await tf.models.modelFromJSON({ modelTopology: init.topology } as tf.io.ModelJSON)
    model.setWeights(init.weights.map((values, i) => tf.tensor(values, model.weights[i]!.shape as number[])))
    const { learningRate, beta1, beta2, epsilon } = init.adam
    const optimizer = tf.train.adam(learningRate, beta1, beta2, epsilon)
    if (init.adamState) {
      const names = model.trainableWeights.map((w) => (w.read() as tf.Variable).name)
      const shapes = model.trainableWeights.map((w) => w.shape as number[])
      const m = init.adamState.moments
      await optimizer.setWeights([
        { name: 'iter', tensor: tf.scalar(init.adamState.iterations, 'int32') },
        ...names.map((name, i) => ({ name: `${name}/m`, tensor: tf.tensor(m[i]!, shapes[i]!) })),
        ...names.map((name, i) => ({ name: `${name}/v`, tensor: tf.tensor(m[names.length + i]!, shapes[i]!) })),
      ])
    }
    // Read before saying ready: the main thread may start the first step the moment it hears.
    let gen = Atomics.load(shared.ctrl, C.GEN)
    Atomics.add(shared.ctrl, C.READY, 1)
    Atomics.notify(shared.ctrl, C.READY)
    for (;;) {
      shared.waitWhile(C.GEN, gen)
      gen = Atomics.load(shared.ctrl, C.GEN)
      if (Atomics.load(shared.ctrl, C.CMD) === CMD_EXIT) return
      const batch = Atomics.load(shared.ctrl, C.BATCH)
      const n = shardSizes(batch, init.layout.replicas)[init.k]!
      const input = shared.r.inputs[init.k]!
      ;(optimizer as unknown as AdamFields).learningRate = shared.learningRate
      const result = shardGradients(model, optimizer, init.loss, n, () => [
        tf.tensor4d(shared.f32(input.x, n * init.layout.imageFloats).slice(), [n, ...init.imageShape] as [
          number,
          number,
          number,
          number,
        ]),
        tf.tensor1d(shared.f32(input.age, n).slice()),
        tf.tensor1d(shared.f32(input.gender, n).slice()),
      ])
      exchangeAndApply(shared, init.k, model, optimizer, result, n, batch)
    }
  } catch (error) {
    shared.fail(error instanceof Error ? `${error.message}` : String(error))
  }
}
