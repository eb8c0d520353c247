/**
 * Threads for the engine's GEMM ({@link ./simd/gemm.ts}). Where XNNPACK runs on several threads the wasm heap
 * is a shared memory, so `worker_threads` can instantiate the GEMM module over the very same heap. A call is
 * split into contiguous ranges of whole 4-row blocks: this thread runs the first, each worker one of the others.
 * Every output element is still one sum in the same order, so results do not depend on the thread count.
 *
 * Hand-off is a few `Int32Array` slots in a `SharedArrayBuffer`: the operands of each worker's range, a
 * generation counter the workers `Atomics.wait` on, and a done counter this thread waits on (Node allows
 * `Atomics.wait` on the main thread). Workers are unreferenced, so they never keep the process alive.
 *
 * Opt-in (`AGEGENDER_GEMM=on`; {@link gemmThreadsOffReason}): one training run on two threads with this pool hung
 * after ~20 minutes with every thread asleep, and the cause is not known yet.
 * @module
 */
import { Worker } from 'node:worker_threads'
import { type GemmCall, type GemmKernels, gemmModule, runGemm } from './simd/gemm.js'
import type { WasmMemory } from './simd/kernels.js'

/** Control slots: [generation, done, workers, failed worker + 1]; then one slot of 16 per worker (12 operands, then "has work"). */
const HEADER = 4
const SLOT = 16
/** Polls of the shared counters before a thread sleeps in `Atomics.wait` (tens of microseconds). */
const SPIN = 20_000

/** How long one wait for the workers blocks before the stall check (see {@link GemmPoolOptions.stallMs}). */
const WAIT_MS = 1_000

/** Bytes per worker for the text of its failure (see {@link GemmPool.run}). */
const FAILURE_BYTES = 512

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads')
const { memory, bytes, control, failures, slot } = workerData
const c = new Int32Array(control)
const o = ${HEADER} + slot * ${SLOT}
let g
let failure = ''
try {
  g = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports
} catch (error) {
  failure = String(error && error.message ? error.message : error)
}
function fail(error) {
  failure = failure || String(error && error.message ? error.message : error)
  const text = new TextEncoder().encode(failure).subarray(0, ${FAILURE_BYTES})
  new Uint8Array(failures, slot * ${FAILURE_BYTES}, ${FAILURE_BYTES}).set(text)
  Atomics.store(c, 3, slot + 1)
}
let seen = 0
for (;;) {
  // spin a little first: the next call usually comes within microseconds, and waking from a wait costs tens
  for (let i = 0; i < ${SPIN} && Atomics.load(c, 0) === seen; i++);
  Atomics.wait(c, 0, seen)
  seen = Atomics.load(c, 0)
  if (c[o + 15] === 1) {
    try {
      if (failure) throw new Error(failure)
      const a = c[o], aStep = c[o + 1], aBlock = c[o + 2], b = c[o + 3], bStep = c[o + 4], bPanel = c[o + 5]
      const cc = c[o + 6], ldc = c[o + 7], rows = c[o + 8], inner = c[o + 9], panels = c[o + 10], acc = c[o + 11]
      const whole = rows & ~3
      if (whole > 0) g.gemm4(a, aStep, aBlock, b, bStep, bPanel, cc, ldc, whole, inner, panels, acc)
      const rest = rows - whole
      if (rest > 0) {
        const fn = rest === 3 ? g.gemm3 : rest === 2 ? g.gemm2 : g.gemm1
        fn(a + (whole / 4) * aBlock, aStep, aBlock, b, bStep, bPanel, cc + whole * ldc, ldc, rest, inner, panels, acc)
      }
    } catch (error) {
      fail(error)
    }
  }
  if (Atomics.add(c, 1, 1) + 1 === c[2]) Atomics.notify(c, 1)
}
`

export interface GemmPoolOptions {
  /** The GEMM module the workers instantiate (tests pass a broken one). */
  readonly moduleBytes?: Uint8Array
  /**
   * A call whose workers have not all finished after this long throws instead of waiting on: a worker that died
   * (out of memory, say) can never report, and this thread, blocked in `Atomics.wait`, cannot run the event loop
   * that would tell it so. A part takes milliseconds, so the default is generous even on a starved machine.
   * @default 120_000
   */
  readonly stallMs?: number
}

export class GemmPool {
  private readonly control: Int32Array
  private readonly failures: SharedArrayBuffer
  private readonly workers: Worker[]
  private readonly stallMs: number
  /** Set when a call stalled: the workers' state is unknown from then on, so every later call throws it. */
  private broken: Error | undefined

  /** `threads` counts this one: `threads - 1` workers start. */
  constructor(
    memory: WasmMemory,
    readonly threads: number,
    options: GemmPoolOptions = {}
  ) {
    const moduleBytes = options.moduleBytes ?? gemmModule(true)
    this.stallMs = options.stallMs ?? 120_000
    this.control = new Int32Array(new SharedArrayBuffer((HEADER + SLOT * threads) * 4))
    this.control[2] = threads - 1
    this.failures = new SharedArrayBuffer(FAILURE_BYTES * threads)
    const bytes = moduleBytes
    this.workers = Array.from({ length: threads - 1 }, (_, slot) => {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { memory, bytes, control: this.control.buffer, failures: this.failures, slot },
      })
      worker.unref()
      return worker
    })
  }

  /**
   * Runs `call` split over the threads (this one included), and returns when every part is done.
   * @throws when a worker failed (its module did not instantiate, or its part threw), or did not finish within
   * `stallMs`: the output is incomplete
   */
  run(kernels: GemmKernels, call: GemmCall): void {
    if (this.broken) throw this.broken
    const blocks = Math.ceil(call.rows / 4)
    const perThread = Math.ceil(blocks / this.threads)
    const c = this.control
    const parts: GemmCall[] = []
    for (let t = 0; t < this.threads; t++) {
      const first = t * perThread * 4
      const rows = Math.min(call.rows, first + perThread * 4) - first
      parts.push({
        ...call,
        a: call.a + t * perThread * call.aBlock,
        c: call.c + first * call.ldc,
        rows: Math.max(0, rows),
      })
    }
    for (let w = 0; w < this.workers.length; w++) {
      const part = parts[w + 1]!
      const o = HEADER + w * SLOT
      c.set(
        [
          part.a,
          part.aStep,
          part.aBlock,
          part.b,
          part.bStep,
          part.bPanel,
          part.c,
          part.ldc,
          part.rows,
          part.inner,
          part.panels,
          part.accumulate ? 1 : 0,
        ],
        o
      )
      c[o + 15] = part.rows > 0 ? 1 : 0
    }
    Atomics.store(c, 1, 0)
    Atomics.add(c, 0, 1)
    Atomics.notify(c, 0)
    runGemm(kernels, parts[0]!)
    for (let i = 0; i < SPIN && Atomics.load(c, 1) !== this.workers.length; i++);
    let last = Atomics.load(c, 1)
    let since = performance.now()
    for (;;) {
      const done = Atomics.load(c, 1)
      if (done === this.workers.length) break
      if (done !== last) {
        last = done
        since = performance.now()
      } else if (performance.now() - since > this.stallMs) {
        this.broken = new Error(
          `the engine's GEMM workers stalled: ${this.workers.length - done} of ${this.workers.length} did not finish ` +
            `a call within ${this.stallMs / 1000} s (a worker thread may have exited); AGEGENDER_GEMM=off avoids the pool`
        )
        throw this.broken
      }
      Atomics.wait(c, 1, done, Math.min(WAIT_MS, this.stallMs))
    }
    const failed = Atomics.load(c, 3)
    if (failed !== 0) {
      const text = new Uint8Array(this.failures, (failed - 1) * FAILURE_BYTES, FAILURE_BYTES)
      const message = new TextDecoder().decode(text.slice(0, text.indexOf(0) === -1 ? FAILURE_BYTES : text.indexOf(0)))
      throw new Error(`the engine's GEMM worker ${failed} failed: ${message}`)
    }
  }

  /** Stops the workers (tests; a trainer's pool lives as long as the process). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}

let threadsWanted = 1
let mode: GemmMode = 'auto'
const pools = new WeakMap<WasmMemory, GemmPool>()

/** The environment switch for the GEMM convolutions (see {@link gemmThreadsOffReason}). */
export const GEMM_ENV = 'AGEGENDER_GEMM'
/** `auto`: where the engine has one thread; `on`: on any number of threads; `off`: never (XNNPACK convolves). */
export type GemmMode = 'auto' | 'on' | 'off'

/**
 * How many threads (this one included) the GEMM uses from now on; the engine sets XNNPACK's pool size. Reads
 * {@link GEMM_ENV} once, here.
 * @throws on a value of {@link GEMM_ENV} other than auto, on or off
 */
export function setGemmThreads(threads: number): void {
  const value = process.env[GEMM_ENV] ?? 'auto'
  if (value !== 'auto' && value !== 'on' && value !== 'off') {
    throw new Error(`${GEMM_ENV} must be auto, on or off, got ${JSON.stringify(value)}`)
  }
  threadsWanted = threads
  mode = value
}

export function gemmThreads(): number {
  return threadsWanted
}

/**
 * Why the convolutions stay on XNNPACK although the GEMM could run, or null. A 5-epoch training run with the GEMM on
 * two threads stopped after ~20 minutes with every thread asleep (README, Engine), not reproduced since and not
 * explained: until it is, `auto` runs the GEMM only where the engine has one thread; `AGEGENDER_GEMM=on` runs it on
 * several.
 */
export function gemmThreadsOffReason(): string | null {
  if (mode === 'off') return `XNNPACK's convolutions: our GEMM turned off (${GEMM_ENV}=off)`
  if (threadsWanted < 2 || mode === 'on') return null
  return `XNNPACK's threaded convolutions: our GEMM on ${threadsWanted} threads is opt-in (${GEMM_ENV}=on) until a hang seen once in a threaded run is explained`
}

/** The pool over `memory`, made on first use, or null for one thread or a heap that is not shared. */
export function gemmPoolFor(memory: WasmMemory): GemmPool | null {
  if (threadsWanted < 2) return null
  if (typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer)) return null
  let pool = pools.get(memory)
  if (pool?.threads !== threadsWanted) {
    void pool?.close()
    pool = new GemmPool(memory, threadsWanted)
    pools.set(memory, pool)
  }
  return pool
}
