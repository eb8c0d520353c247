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
import { type SimdKernels, simdKernels, type WasmMemory } from './simd/kernels.js'

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
  /** The Emscripten module's exports; `memory` is the heap's `WebAssembly.Memory` where the module defines it. */
  asm?: { memory?: WasmMemory }
  /** The heap's memory where the module imports it (the threaded build's shared memory). */
  wasmMemory?: WasmMemory
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
  backend: object
  attrs?: tf.NamedAttrMap
}

export function asWasm(backend: object): WasmBackend {
  return backend as WasmBackend
}

/** A Float32Array (or Int32Array/Uint8Array by dtype) aliasing the tensor's heap memory. */
export function heapView(backend: WasmBackend, info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array {
  const data = backend.dataIdMap.get(info.dataId)
  if (!data) throw new Error('tensor is not on the wasm backend')
  // The memory's own buffer: after a shared memory grows, Emscripten's HEAP views are replaced only lazily.
  const buffer = heapMemory(backend)?.buffer ?? backend.wasm.HEAPU8.buffer
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

/** The `WebAssembly.Memory` of this backend's heap: exported by the single-threaded builds, imported by the threaded one. */
export function heapMemory(backend: WasmBackend): WasmMemory | undefined {
  return backend.wasm.asm?.memory ?? backend.wasm.wasmMemory
}

/** SIMD kernels over this backend's heap, or null (no SIMD, or an Emscripten build that hides its memory). */
export function simd(backend: WasmBackend): SimdKernels | null {
  const memory = heapMemory(backend)
  return memory ? simdKernels(memory) : null
}

/** Byte address of element `offset` of a tensor on the heap. */
export function addressOf(backend: WasmBackend, info: tf.TensorInfo, offset = 0): number {
  const data = backend.dataIdMap.get(info.dataId)
  if (!data) throw new Error('tensor is not on the wasm backend')
  return data.memoryOffset + offset * 4
}

/**
 * `dst[dOff + j*dStride + i] = src[sOff + i*sStride + j]` for i < rows, j < cols (float32 tensors on the heap):
 * SIMD 4x4 blocks when available, else JS eight rows at a time.
 */
export function transposeInto(
  backend: WasmBackend,
  src: tf.TensorInfo,
  sOff: number,
  sStride: number,
  dst: tf.TensorInfo,
  dOff: number,
  dStride: number,
  rows: number,
  cols: number
): void {
  const kernels = simd(backend)
  if (kernels) {
    kernels.transpose(addressOf(backend, src, sOff), sStride, addressOf(backend, dst, dOff), dStride, rows, cols)
  } else {
    transposeStrided(heapF32(backend, src), sOff, sStride, heapF32(backend, dst), dOff, dStride, rows, cols)
  }
}

/**
 * The JS fallback of {@link transposeInto}: eight source rows at a time so each pass writes eight
 * consecutive floats (about 4x faster than a plain double loop in V8).
 */
export function transposeStrided(
  src: Float32Array,
  sOff: number,
  sStride: number,
  dst: Float32Array,
  dOff: number,
  dStride: number,
  rows: number,
  cols: number
): void {
  let i = 0
  for (; i + 8 <= rows; i += 8) {
    const s0 = sOff + i * sStride
    const s1 = s0 + sStride
    const s2 = s1 + sStride
    const s3 = s2 + sStride
    const s4 = s3 + sStride
    const s5 = s4 + sStride
    const s6 = s5 + sStride
    const s7 = s6 + sStride
    let d = dOff + i
    for (let j = 0; j < cols; j++, d += dStride) {
      dst[d] = src[s0 + j]!
      dst[d + 1] = src[s1 + j]!
      dst[d + 2] = src[s2 + j]!
      dst[d + 3] = src[s3 + j]!
      dst[d + 4] = src[s4 + j]!
      dst[d + 5] = src[s5 + j]!
      dst[d + 6] = src[s6 + j]!
      dst[d + 7] = src[s7 + j]!
    }
  }
  for (; i < rows; i++) {
    let s = sOff + i * sStride
    let d = dOff + i
    for (let j = 0; j < cols; j++, s++, d += dStride) dst[d] = src[s]!
  }
}

/**
 * `rows` copies of `len` floats from `src[sOff + r*sStride]` to `dst[dOff + r*dStride]`: SIMD when available,
 * else one `TypedArray.set` per row.
 */
export function copyRowsInto(
  backend: WasmBackend,
  src: tf.TensorInfo,
  sOff: number,
  sStride: number,
  dst: tf.TensorInfo,
  dOff: number,
  dStride: number,
  rows: number,
  len: number
): void {
  const kernels = simd(backend)
  if (kernels) {
    kernels.copyRows(addressOf(backend, src, sOff), sStride, addressOf(backend, dst, dOff), dStride, rows, len)
    return
  }
  const s = heapF32(backend, src)
  const d = heapF32(backend, dst)
  for (let r = 0; r < rows; r++) d.set(s.subarray(sOff + r * sStride, sOff + r * sStride + len), dOff + r * dStride)
}
