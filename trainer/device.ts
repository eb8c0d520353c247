/**
 * Which device the TensorFlow engine computes on, and whether that is what the job asked for: a job that asks
 * for `tensorflow-gpu` and gets a CPU (no GPU on the instance, a driver mismatch, a container started without
 * `--gpus`) would otherwise train for days at a few images per second. It fails fast with a reason instead.
 * @module
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

export interface DeviceReport {
  readonly kind: 'GPU' | 'CPU'
  /** For metrics.json and logs: `GPU (Tesla T4)`, `GPU`, `CPU (wasm)`. */
  readonly description: string
}

/** What tfjs-node's backend object exposes (the binding's `isUsingGpuDevice()`, cached as a field). */
export interface NodeBackendLike {
  readonly isUsingGpuDevice?: unknown
  readonly binding?: { readonly isUsingGpuDevice?: () => boolean }
}

/**
 * Whether a tfjs-node backend runs on a GPU: tfjs-node sets `isUsingGpuDevice` from the devices TensorFlow
 * lists at start-up. `undefined` for other backends (wasm, cpu), which never use one.
 */
export function usesGpu(backend: unknown): boolean | undefined {
  const b = backend as NodeBackendLike | null | undefined
  if (b === null || b === undefined) return undefined
  if (typeof b.isUsingGpuDevice === 'boolean') return b.isUsingGpuDevice
  if (typeof b.binding?.isUsingGpuDevice === 'function') return b.binding.isUsingGpuDevice()
  return undefined
}

/**
 * @param engineName tfjs backend name (`tensorflow`, `wasm`, `cpu`)
 * @param gpu what {@link usesGpu} said
 * @param gpuNames GPU models the driver lists (for the record only; may be empty)
 */
export function deviceReport(engineName: string, gpu: boolean | undefined, gpuNames: readonly string[]): DeviceReport {
  if (gpu === true) {
    return { kind: 'GPU', description: gpuNames.length > 0 ? `GPU (${gpuNames.join(', ')})` : 'GPU' }
  }
  return { kind: 'CPU', description: `CPU (${engineName})` }
}

/** Why the device does not satisfy the requested backend, or `undefined` when it does. */
export function deviceProblem(
  requestedBackend: string,
  device: DeviceReport,
  gpuNames: readonly string[]
): string | undefined {
  if (requestedBackend !== 'tensorflow-gpu' || device.kind === 'GPU') return undefined
  const driver =
    gpuNames.length > 0
      ? `the driver lists ${gpuNames.join(', ')}, so TensorFlow could not use it (CUDA/cuDNN mismatch?)`
      : 'nvidia-smi lists no GPU (instance type without one, or the container was started without a GPU)'
  return `AGEGENDER_BACKEND=tensorflow-gpu, but TensorFlow reports no GPU device and would train on the CPU: ${driver}`
}

/** GPU model names from `nvidia-smi`; empty when it is missing or fails. */
export async function nvidiaGpuNames(): Promise<string[]> {
  try {
    const { stdout } = await promisify(execFile)('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], {
      timeout: 10_000,
    })
    return stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
  } catch {
    return []
  }
}
