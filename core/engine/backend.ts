/**
 * Picks and initializes the TensorFlow.js backend once per process, and reports what it runs with.
 *
 * Auto order (the ladder, `ladder.ts`): `@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node` (both optional
 * native builds, loaded after the `node:util` shim of `node-compat.ts`), then the WebAssembly backend with this
 * project's kernels and patches, then plain JS `cpu`. Each rung must pass a probe op before it is chosen; the
 * reasons rungs were passed over are in the report. The caller decides a forced choice (the CLI passes
 * `AGEGENDER_BACKEND`); this module never reads the environment, so a Lambda handler and a test can pick
 * without side effects.
 *
 * The kernels and patches are installed only when wasm is chosen (they serve no other backend), and each says
 * in the report whether it is on and why not.
 * @module
 */
import { z } from 'zod'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { installFusedBatchNorm } from './batch-norm.js'
import { checkFusedAdam } from './fused-adam.js'
import { activateBackend, climb, firstLine } from './ladder.js'
import { installLazyConvGradients } from './lazy-conv-grad.js'
import { installNodeUtilShim } from './node-compat.js'
import { type EngineFeature, type EngineReport, off, on, tfjsVersions, versionCheck } from './report.js'
import { simdFmaOffReason, simdKernelModule, simdKernelsOffReason } from './simd/kernels.js'
import { gemmThreads, gemmThreadsOffReason, setGemmThreads } from './gemm-pool.js'
import { gemmKernels, gemmModule, gemmOffReason } from './simd/gemm.js'
import { asWasm, heapMemory, simd } from './wasm-heap.js'
import { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './wasm-kernels.js'
import { MAX_WASM_THREADS, withWasmThreads } from './wasm-threads.js'

/** The backends one may ask for: every flag, variable and option that names a backend parses with this. */
export const BackendChoice = z.enum(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'])
export type BackendChoice = z.infer<typeof BackendChoice>

export const BACKEND_CHOICES: readonly BackendChoice[] = BackendChoice.options

export interface EngineOptions {
  /** @default 'auto' */
  readonly backend?: BackendChoice
  /**
   * Folder holding `tfjs-backend-wasm*.wasm`, for bundles that ship the binaries next to the code.
   * @default the installed `@tensorflow/tfjs-backend-wasm/dist/` folder
   */
  readonly wasmPath?: string
  /**
   * XNNPACK threads on wasm, the calling thread included (see `wasm-threads.ts`): 1 runs the single-threaded
   * build. Results do not depend on it. The trainer passes {@link defaultWasmThreads}; serving keeps 1.
   * @default 1
   */
  readonly threads?: number
}

/** Every logical core, up to {@link MAX_WASM_THREADS}: what the trainer asks for unless told otherwise. */
export function defaultWasmThreads(): number {
  return Math.min(MAX_WASM_THREADS, os.availableParallelism())
}

export interface EngineInfo {
  /** The tfjs backend name: `tensorflow`, `wasm` or `cpu`. */
  readonly name: string
  /** One line for logs, e.g. `wasm (SIMD kernels, 1 thread, 11 training kernels, 3 patches)`. */
  readonly description: string
  /** Everything the engine runs with, on or off with a reason (see `report.ts`). */
  readonly report: EngineReport
}

let current: Promise<EngineInfo> | undefined

/**
 * Initializes the backend; later calls return the first call's result. A later call forcing a different
 * backend is an error rather than a silent switch: tensors already made would be copied between backends.
 */
export function initEngine(options: EngineOptions = {}): Promise<EngineInfo> {
  const choice = options.backend ?? 'auto'
  if (!BACKEND_CHOICES.includes(choice)) {
    return Promise.reject(new Error(`unknown backend '${String(choice)}'; use one of ${BACKEND_CHOICES.join(', ')}`))
  }
  if (current) {
    if (choice === 'auto') return current
    return current.then((info) => {
      if (info.name === backendName(choice)) return info
      throw new Error(`the TensorFlow.js engine is already initialized with ${info.name}; cannot switch to ${choice}`)
    })
  }
  current = start(choice, options).catch((error: unknown) => {
    // A failed start may be retried (e.g. with another forced backend).
    current = undefined
    throw error
  })
  return current
}

function backendName(choice: BackendChoice): string {
  return choice === 'tensorflow-gpu' ? 'tensorflow' : choice
}

/** What one rung loaded: the backend, a short description and the features it brought. */
interface Loaded {
  readonly name: string
  readonly description: string
  readonly versions: Readonly<Record<string, string>>
  readonly features: Readonly<Record<string, EngineFeature>>
}

async function start(choice: BackendChoice, options: EngineOptions): Promise<EngineInfo> {
  const order = choice === 'auto' ? (['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const) : [choice]
  const { value, fallbacks } = await climb(order.map((name) => ({ name, load: () => load(name, options) })))
  const versions = { ...tfjsVersions(), ...value.versions }
  const report: EngineReport = {
    backend: value.name,
    node: process.version,
    tfjs: versions,
    fallbacks,
    features: { 'tfjs-version': versionCheck(versions), ...value.features },
  }
  // Rungs that are installed but failed are worth a word in the one-line description; absent ones are not.
  const failed = fallbacks.filter((f) => !f.includes(' is not installed'))
  const description = failed.length ? `${value.description}; passed over ${failed.join('; ')}` : value.description
  return { name: value.name, description, report }
}

async function load(choice: Exclude<BackendChoice, 'auto'>, options: EngineOptions): Promise<Loaded> {
  switch (choice) {
    case 'tensorflow-gpu':
      return loadNode('@tensorflow/tfjs-node-gpu', 'TensorFlow C library (GPU build)')
    case 'tensorflow':
      return loadNode('@tensorflow/tfjs-node', 'TensorFlow C library')
    case 'wasm':
      return loadWasm(options.wasmPath, options.threads ?? 1)
    case 'cpu':
      await activateBackend('cpu')
      return { name: 'cpu', description: 'cpu (plain JavaScript, slow)', versions: {}, features: {} }
  }
}

async function loadNode(pkg: string, what: string): Promise<Loaded> {
  const shimmed = installNodeUtilShim()
  let version = '?'
  try {
    // A variable specifier: the packages are optional, so neither TypeScript nor a bundler may require them.
    const specifier: string = pkg
    const module = (await import(specifier)) as { version?: Record<string, string> }
    version = module.version?.[pkg.slice('@tensorflow/'.length)] ?? '?'
  } catch (error) {
    const missing = /Cannot find (package|module)/.test(String(error)) && String(error).includes(pkg)
    throw new Error(
      missing
        ? `${pkg} is not installed; install it or pick another backend`
        : `${pkg} failed to load (${firstLine(error)})`
    )
  }
  if (!tf.findBackendFactory('tensorflow')) {
    throw new Error(
      `${pkg} loaded but registered no 'tensorflow' backend: it uses another copy of @tensorflow/tfjs-core`
    )
  }
  await activateBackend('tensorflow')
  return {
    name: 'tensorflow',
    description: `tensorflow (${pkg}, ${what})`,
    versions: { [pkg.slice('@tensorflow/'.length)]: version },
    features: {
      'node-util-shim': shimmed.length
        ? on(`defined node:util ${shimmed.join(', ')} for ${pkg} (removed in Node 23, tfjs#8609)`)
        : off('not needed: this Node still has every node:util function tfjs-node calls'),
    },
  }
}

async function loadWasm(wasmPath: string | undefined, threads: number): Promise<Loaded> {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new Error(`wasm threads must be an integer from 1 to ${MAX_WASM_THREADS}, got ${threads}`)
  }
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm')
  try {
    wasm = await import('@tensorflow/tfjs-backend-wasm')
  } catch (error) {
    throw new Error(`@tensorflow/tfjs-backend-wasm is not installed or failed to load (${firstLine(error)})`)
  }
  if (!tf.findBackendFactory('wasm')) {
    throw new Error('@tensorflow/tfjs-backend-wasm registered with another copy of @tensorflow/tfjs-core')
  }
  const folder =
    wasmPath ?? path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm')) + path.sep
  // setWasmPaths throws once the module was instantiated (e.g. a second engine in tests); the first path stays.
  try {
    wasm.setWasmPaths(folder.endsWith('/') || folder.endsWith(path.sep) ? folder : folder + path.sep)
  } catch {
    // already initialized
  }
  registerWasmTrainingKernels()
  let threadsFailed: string | undefined
  if (threads > 1) {
    try {
      await withWasmThreads(threads, () => activateBackend('wasm'))
    } catch (error) {
      // the threaded build would not start: say why, and train on the single-threaded one
      threadsFailed = firstLine(error)
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false)
      wasm.setThreadsCount(1)
      await activateBackend('wasm')
    }
  } else {
    await activateBackend('wasm')
  }
  setGemmThreads(wasm.getThreadsCount())
  const features: Record<string, EngineFeature> = {
    'training-kernels': on(`${Object.keys(WASM_TRAINING_KERNELS).join(', ')} registered for wasm`),
    'simd-kernels': simdFeature(),
    'simd-fma': fmaFeature(),
    'gemm-conv': gemmFeature(),
    'lazy-conv-gradients': installLazyConvGradients(),
    'fused-batch-norm': installFusedBatchNorm(),
    'fused-adam': checkFusedAdam(),
  }
  const xnnSimd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')
  const pool = wasm.getThreadsCount()
  features['xnnpack-simd'] = xnnSimd
    ? on(pool > 1 ? 'tfjs-backend-wasm-threaded-simd.wasm' : 'tfjs-backend-wasm-simd.wasm')
    : off('this runtime has no WebAssembly SIMD')
  features['xnnpack-threads'] = threadsFeature(threads, pool, threadsFailed)
  const patches = ['lazy-conv-gradients', 'fused-batch-norm', 'fused-adam'].filter((k) => features[k]!.on).length
  const kernels = features['simd-kernels']!.on ? 'SIMD kernels' : 'JS loops (no SIMD kernels)'
  return {
    name: 'wasm',
    description: `wasm (${kernels}, ${pool} thread${pool === 1 ? '' : 's'}, ${Object.keys(WASM_TRAINING_KERNELS).length} training kernels, ${patches}/3 patches)`,
    versions: { 'tfjs-backend-wasm': wasm.version_wasm },
    features,
  }
}

/** XNNPACK's pool: on with its size, off when one thread was asked for, or asked-for and got when they differ. */
export function threadsFeature(asked: number, got: number, failure?: string): EngineFeature {
  if (failure) return off(`${asked} threads asked for, the threaded build failed to start (${failure}): 1 thread`)
  if (got !== asked) return off(`${asked} threads asked for, XNNPACK's pool has ${got}`)
  return asked > 1
    ? on(`${got} threads (the calling one included) run XNNPACK's operators`)
    : off('1 thread asked for (--threads / AGEGENDER_THREADS)')
}

/**
 * The SIMD kernel module over the wasm heap: on, off because this runtime has no SIMD (or a test turned it
 * off), or an error: a module that does not build where SIMD exists, or a backend that hides its heap's
 * memory, is a defect to fix, not a mode to run in.
 */
function simdFeature(): EngineFeature {
  const reason = simdKernelsOffReason()
  if (reason) return off(reason)
  const backend = asWasm(tf.backend())
  if (!backend.wasm || !heapMemory(backend)) {
    throw new Error(
      "tfjs-backend-wasm does not expose its heap's WebAssembly.Memory (wasm.asm.memory or wasm.wasmMemory): the engine needs updating for this tfjs"
    )
  }
  simd(backend) // throws when the module is broken
  return on(
    `adam, transpose, copyRows, maxPoolGrad, bnGradSums, bnGradApply, blend (${simdKernelModule().length} bytes)`
  )
}

/**
 * The convolutions on the engine's FMA GEMM (`wasm-gemm-conv.ts`): on where the SIMD kernels have FMA, off with
 * the reason otherwise (XNNPACK convolves). Instantiating the module here validates it: broken is an error.
 */
function gemmFeature(): EngineFeature {
  const reason = gemmOffReason() ?? gemmThreadsOffReason()
  if (reason) return off(reason)
  const memory = heapMemory(asWasm(tf.backend()))
  if (!memory || !gemmKernels(memory)) throw new Error('the GEMM kernels did not instantiate over the wasm heap')
  return on(
    `Conv2D, Conv2DBackpropFilter and the input gradient's phases on our f32x4.relaxed_madd GEMM, co % 8 == 0 (${gemmModule().length} bytes, ${gemmThreads()} thread${gemmThreads() === 1 ? '' : 's'})`
  )
}

/**
 * Whether the SIMD kernels use relaxed SIMD's fused multiply-add: on where the runtime has it (Node 22+),
 * off where it lacks it or a test or diagnosis turned it off (`setSimdFmaEnabled`). Read after
 * {@link simdFeature}, which has already instantiated (so validated) the variant in use.
 */
function fmaFeature(): EngineFeature {
  const reason = simdFmaOffReason()
  return reason ? off(reason) : on('runtime has relaxed SIMD: f32x4.relaxed_madd in BatchNorm gradient kernels')
}
