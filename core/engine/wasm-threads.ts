/**
 * XNNPACK's thread pool under Node. tfjs-backend-wasm ships a threaded SIMD build whose Emscripten glue runs its
 * pthreads on `worker_threads`, but three things keep it from Node; {@link withWasmThreads} lifts exactly those,
 * and only while the backend initializes:
 *
 * 1. tfjs's `WASM_HAS_MULTITHREAD_SUPPORT` flag is hard-coded false on Node (tfjs#3830): it is set true.
 * 2. tfjs hands Emscripten the pthread worker script, and its own factory for the workers to load, as `Blob`s
 *    behind `blob:` URLs, which `worker_threads` cannot load. While the backend initializes, Blobs keep their text,
 *    `URL.createObjectURL` writes such a Blob to a temporary file and returns its path, and the workers' `load`
 *    message carries the factory's file instead of the Blob. The factory's text refers to names its bundle
 *    defines around it (`require$$0`… and TypeScript's helpers): the file defines them first.
 * 3. The C++ side caps the pool at half the logical cores it reads through `os.cpus()` when the module starts
 *    (it assumes two hyper-threads per core): meanwhile `os.cpus()` reports twice the threads asked for.
 *
 * Each XNNPACK operator splits its output between the threads; every output element is still computed by one
 * thread in the same order, so results are the same for any thread count (test/core/engine/wasm-threads.test.ts).
 * XNNPACK's operators run threaded, and so does the engine's FMA GEMM with `AGEGENDER_GEMM=on` (`gemm-pool.ts`,
 * over the same shared heap);
 * the engine's other kernels (Adam, BatchNorm, memory kernels) do not.
 *
 * Afterwards the pool's workers are unreferenced (they would keep the process alive) and the pool size is
 * checked: the caller reports what it got, never silently less.
 * @module
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import * as tf from '@tensorflow/tfjs'

/** The threaded build pre-creates this many workers; a larger pool would need workers made after start-up. */
export const MAX_WASM_THREADS = 8

interface PThreadPool {
  unusedWorkers: Worker[]
  runningWorkers: Worker[]
}

/** A Blob that keeps the text it was made from (tfjs makes both of its Blobs from strings). */
class TextBlob extends Blob {
  readonly text_: string
  constructor(parts: ConstructorParameters<typeof Blob>[0] = [], options?: ConstructorParameters<typeof Blob>[1]) {
    super(parts, options)
    this.text_ = parts.map((p) => (typeof p === 'string' ? p : '')).join('')
  }
}

/**
 * What the factory's text needs defined before it runs in a worker: the node bundle's `require$$N` modules, its
 * `commonjsGlobal` and `_scriptDir`, esbuild's `__require` (a bundled trainer), and the three TypeScript
 * down-level helpers the factory calls. Written out here rather than read from tfjs's files, so that a bundled
 * trainer (no node_modules) works the same; defining a name the factory does not use is harmless, and a name it
 * needs but lacks fails the engine's thread and bundle tests.
 */
const FACTORY_PRELUDE = [
  'var require$$0=require("fs"),require$$1=require("path"),require$$2=require("worker_threads"),',
  'require$$3=require("perf_hooks"),require$$4=require("os");',
  'var commonjsGlobal=globalThis;var _scriptDir;var __require=require;',
  'var __values=function(o){return o[Symbol.iterator]()};',
  'var __read=function(o,n){var a=[],it=o[Symbol.iterator](),r;while((n===void 0||n-->0)&&!(r=it.next()).done)a.push(r.value);return a};',
  'var __spreadArray=function(to,from){return to.concat(Array.prototype.slice.call(from))};',
  '\n',
].join('')

/**
 * Runs `init` (which must initialize the wasm backend) with the threaded build and a pool of `threads` threads
 * (including the calling one), then undoes every change above. The temporary files are removed once the workers
 * have loaded them. Returns what `init` returns.
 */
export async function withWasmThreads<T>(threads: number, init: () => Promise<T>): Promise<T> {
  if (!Number.isInteger(threads) || threads < 2 || threads > MAX_WASM_THREADS) {
    throw new Error(`wasm threads must be an integer from 2 to ${MAX_WASM_THREADS}, got ${threads}`)
  }
  const wasm = await import('@tensorflow/tfjs-backend-wasm')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agegender-wasm-threads-'))
  let files = 0
  const writeScript = (text: string) => {
    const file = path.join(dir, `script-${files++}.js`)
    fs.writeFileSync(file, text)
    return file
  }
  const saved = {
    Blob: globalThis.Blob,
    createObjectURL: URL.createObjectURL,
    postMessage: Worker.prototype.postMessage,
    cpus: os.cpus,
  }
  globalThis.Blob = TextBlob as typeof Blob
  URL.createObjectURL = (blob: Blob) =>
    blob instanceof TextBlob ? writeScript(blob.text_) : saved.createObjectURL(blob)
  let factoryFile: string | undefined
  Worker.prototype.postMessage = function (this: Worker, message: unknown, transfer?: readonly unknown[]) {
    const m = message as { cmd?: string; urlOrBlob?: unknown } | null
    if (m?.cmd === 'load' && m.urlOrBlob instanceof TextBlob) {
      factoryFile ??= writeScript(FACTORY_PRELUDE + m.urlOrBlob.text_)
      message = { ...m, urlOrBlob: factoryFile }
    }
    return saved.postMessage.call(this, message, transfer as never)
  }
  const cpu = os.cpus()[0]
  ;(os as { cpus: typeof os.cpus }).cpus = () => (cpu ? Array.from({ length: 2 * threads }, () => cpu) : [])
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true)
  wasm.setThreadsCount(threads)
  try {
    const result = await init()
    const pool = (tf.backend() as unknown as { wasm?: { PThread?: PThreadPool } }).wasm?.PThread
    for (const worker of [...(pool?.unusedWorkers ?? []), ...(pool?.runningWorkers ?? [])]) worker.unref()
    return result
  } finally {
    globalThis.Blob = saved.Blob
    URL.createObjectURL = saved.createObjectURL
    Worker.prototype.postMessage = saved.postMessage
    ;(os as { cpus: typeof os.cpus }).cpus = saved.cpus
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
