/**
 * Picks and initializes the TensorFlow.js backend once per process.
 *
 * Auto order: `@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node` (both optional native builds), then the
 * WebAssembly backend with this project's training kernels ({@link ./wasm-kernels.ts}), then plain JS `cpu`.
 * The caller decides a forced choice (the CLI passes `AGEGENDER_BACKEND`); this module never reads the
 * environment, so a Lambda handler and a test can pick without side effects.
 * @module
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { installFusedBatchNorm } from './batch-norm.js'
import { installLazyConvGradients } from './lazy-conv-grad.js'
import { registerWasmTrainingKernels } from './wasm-kernels.js'

export type BackendChoice = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu'

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']

export interface EngineOptions {
  /** @default 'auto' */
  readonly backend?: BackendChoice
  /**
   * Folder holding `tfjs-backend-wasm*.wasm`, for bundles that ship the binaries next to the code.
   * @default the installed `@tensorflow/tfjs-backend-wasm/dist/` folder
   */
  readonly wasmPath?: string
}

export interface EngineInfo {
  /** The tfjs backend name: `tensorflow`, `wasm` or `cpu`. */
  readonly name: string
  /** One line for logs, e.g. `wasm (SIMD, 1 thread, training kernels)`. */
  readonly description: string
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

async function start(choice: BackendChoice, options: EngineOptions): Promise<EngineInfo> {
  installLazyConvGradients()
  installFusedBatchNorm()
  if (choice !== 'auto') return load(choice, options)
  const failures: string[] = []
  for (const candidate of ['tensorflow-gpu', 'tensorflow', 'wasm'] as const) {
    try {
      return await load(candidate, options)
    } catch (error) {
      failures.push(`${candidate}: ${firstLine(error)}`)
    }
  }
  const info = await load('cpu', options)
  return { ...info, description: `${info.description}; faster backends unavailable (${failures.join('; ')})` }
}

async function load(choice: Exclude<BackendChoice, 'auto'>, options: EngineOptions): Promise<EngineInfo> {
  switch (choice) {
    case 'tensorflow-gpu':
      return loadNode('@tensorflow/tfjs-node-gpu', 'TensorFlow C library (GPU build)')
    case 'tensorflow':
      return loadNode('@tensorflow/tfjs-node', 'TensorFlow C library')
    case 'wasm':
      return loadWasm(options.wasmPath)
    case 'cpu':
      await activate('cpu')
      return { name: 'cpu', description: 'cpu (plain JavaScript, slow)' }
  }
}

async function loadNode(pkg: string, what: string): Promise<EngineInfo> {
  try {
    // A variable specifier: the packages are optional, so neither TypeScript nor a bundler may require them.
    const specifier: string = pkg
    await import(specifier)
  } catch (error) {
    throw new Error(`backend ${pkg} is not available (${firstLine(error)}); install it or pick another backend`)
  }
  if (!tf.findBackendFactory('tensorflow')) {
    throw new Error(`${pkg} loaded but registered no 'tensorflow' backend: it uses another copy of @tensorflow/tfjs-core`)
  }
  await activate('tensorflow')
  return { name: 'tensorflow', description: `tensorflow (${pkg}, ${what})` }
}

async function loadWasm(wasmPath: string | undefined): Promise<EngineInfo> {
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm')
  try {
    wasm = await import('@tensorflow/tfjs-backend-wasm')
  } catch (error) {
    throw new Error(`backend @tensorflow/tfjs-backend-wasm is not available (${firstLine(error)})`)
  }
  if (!tf.findBackendFactory('wasm')) {
    throw new Error('@tensorflow/tfjs-backend-wasm registered with another copy of @tensorflow/tfjs-core')
  }
  const folder = wasmPath ?? path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm')) + path.sep
  // setWasmPaths throws once the module was instantiated (e.g. a second engine in tests); the first path stays.
  try {
    wasm.setWasmPaths(folder.endsWith('/') || folder.endsWith(path.sep) ? folder : folder + path.sep)
  } catch {
    // already initialized
  }
  registerWasmTrainingKernels()
  await activate('wasm')
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')
  const threads = wasm.getThreadsCount()
  return {
    name: 'wasm',
    description: `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}, training kernels)`,
  }
}

async function activate(name: string): Promise<void> {
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
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.split('\n')[0] ?? message
}
