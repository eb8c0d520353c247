/**
 * The parts of `@tensorflow/tfjs-backend-wasm`'s `BackendWasm` that the custom kernels use, and helpers for
 * working on its heap directly.
 *
 * Why not `backend.readSync`: on the wasm backend it copies the whole tensor out of the heap (`HEAPU8.slice`),
 * which is what made the stock `Slice` kernel cost ~60 ms for a 9 MB tensor. Views from
 * {@link heapF32} alias the heap instead. A view is invalidated when the heap grows (any allocation may grow
 * it), so kernels allocate every output first and take views afterwards.
 * @module
 */
import * as tf from '@tensorflow/tfjs'

export type DataId = object

export interface WasmTensorData {
  id: number
  memoryOffset: number
  shape: number[]
  dtype: tf.DataType
  refCount: number
}

export interface WasmModule {
  HEAPU8: Uint8Array
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: unknown[]) => unknown
}

/** Structural view of `BackendWasm` (its class is not exported in a way TypeScript can reach cleanly). */
export interface WasmBackend {
  wasm: WasmModule
  dataIdMap: { get(dataId: DataId): WasmTensorData | undefined }
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array
  disposeData(dataId: DataId, force?: boolean): boolean
  incRef(dataId: DataId): void
}

export type KernelArgs = {
  inputs: tf.NamedTensorInfoMap
  backend: {}
  attrs?: tf.NamedAttrMap
}

export function asWasm(backend: {}): WasmBackend {
  return backend as WasmBackend
}

/** A Float32Array (or Int32Array/Uint8Array by dtype) aliasing the tensor's heap memory. */
export function heapView(backend: WasmBackend, info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array {
  const data = backend.dataIdMap.get(info.dataId)
  if (!data) throw new Error('tensor is not on the wasm backend')
  const buffer = backend.wasm.HEAPU8.buffer
  const size = sizeOf(info.shape)
  switch (info.dtype) {
    case 'float32':
      return new Float32Array(buffer, data.memoryOffset, size)
    case 'int32':
      return new Int32Array(buffer, data.memoryOffset, size)
    case 'bool':
      return new Uint8Array(buffer, data.memoryOffset, size)
    default:
      throw new Error(`dtype ${info.dtype} is not supported by this kernel`)
  }
}

export function heapF32(backend: WasmBackend, info: tf.TensorInfo): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`expected float32, got ${info.dtype}`)
  return heapView(backend, info) as Float32Array
}

export function sizeOf(shape: readonly number[]): number {
  let size = 1
  for (const d of shape) size *= d
  return size
}

export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length)
  let s = 1
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s
    s *= shape[i]!
  }
  return strides
}

/** Runs another wasm kernel (stock or ours) on tensor infos, as kernels may do in tfjs. */
export function runWasmKernel(name: string, args: KernelArgs): tf.TensorInfo {
  const config = tf.getKernel(name, 'wasm')
  if (!config) throw new Error(`kernel ${name} is not registered for wasm`)
  const out = config.kernelFunc(args)
  if (Array.isArray(out)) throw new Error(`kernel ${name} returned several outputs`)
  return out
}

export function dispose(backend: WasmBackend, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId)
}

/** Output tensor info sharing the input's memory under another shape (what the stock Reshape does). */
export function reshapeInfo(backend: WasmBackend, x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return runWasmKernel('Reshape', { inputs: { x }, backend, attrs: { shape } })
}
