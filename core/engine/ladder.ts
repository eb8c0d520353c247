/**
 * The backend ladder: candidates are tried in order, each must load, become the active tfjs backend and pass
 * a probe (a few real ops whose results are checked), or the next one is tried with the reason kept.
 *
 * The probe is what catches a backend that imports and registers fine but cannot compute, e.g. tfjs-node 4.22
 * on Node 23+ without the `node:util` shim (see `node-compat.ts`): there, loading succeeds and the first op
 * throws.
 * @module
 */
import * as tf from '@tensorflow/tfjs'

export interface Rung<T> {
  /** The choice this rung stands for, e.g. `tensorflow-gpu`. */
  readonly name: string
  /** Loads and activates the backend (see {@link activateBackend}); throws with the reason it cannot. */
  readonly load: () => Promise<T>
}

export interface Climbed<T> {
  readonly value: T
  /** One `name: reason` per rung that failed before this one. */
  readonly fallbacks: readonly string[]
}

/** The first rung that loads; throws, listing every reason, when none does. */
export async function climb<T>(rungs: readonly Rung<T>[]): Promise<Climbed<T>> {
  const fallbacks: string[] = []
  for (const rung of rungs) {
    try {
      return { value: await rung.load(), fallbacks }
    } catch (error) {
      fallbacks.push(`${rung.name}: ${firstLine(error)}`)
    }
  }
  throw new Error(
    rungs.length === 1 ? `backend ${fallbacks[0]}` : `no TensorFlow.js backend works (${fallbacks.join('; ')})`
  )
}

/** Makes `name` the active backend and probes it; throws with the reason when either fails. */
export async function activateBackend(name: string): Promise<void> {
  let ok: boolean
  try {
    ok = await tf.setBackend(name)
  } catch (error) {
    throw new Error(`backend ${name} failed to initialize: ${firstLine(error)}`)
  }
  if (!ok || tf.getBackend() !== name) throw new Error(`backend ${name} failed to initialize`)
  await tf.ready()
  // The cpu backend nags about tfjs-node on its first tensor; the choice was deliberate, so skip it.
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null
  if (cpu && 'firstUse' in cpu) cpu.firstUse = false
  try {
    probeBackend()
  } catch (error) {
    throw new Error(`backend ${name} loaded but its probe op failed: ${firstLine(error)}`)
  }
}

/**
 * Runs an element-wise op, a reduction and a convolution on the active backend and checks the values.
 * @throws when an op throws or computes a wrong value
 */
export function probeBackend(): void {
  const [sum, conv] = tf.tidy(() => {
    const x = tf.tensor1d([1, 2, 3])
    const s = tf.sum(tf.mul(x, tf.scalar(2)))
    const image = tf.ones([1, 3, 3, 1]) as tf.Tensor4D
    const c = tf.sum(tf.conv2d(image, tf.ones([2, 2, 1, 1]) as tf.Tensor4D, 1, 'valid'))
    return [s.dataSync()[0], c.dataSync()[0]]
  })
  if (sum !== 12 || conv !== 16) throw new Error(`wrong results: sum ${sum} (expected 12), conv ${conv} (expected 16)`)
}

export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.split('\n')[0] ?? message
}
