/**
 * Convolutions on the engine's own FMA GEMM ({@link ./simd/gemm.ts}), where the runtime has relaxed SIMD:
 *
 * - forward (and so the input gradient's phases, which are forward convolutions): for a chunk of output rows,
 *   the im2col rows `[positions][kh*kw*ci]` are copied out of x, packed four rows interleaved, and multiplied
 *   by the weights read in place as `[kh*kw*ci][co]` (XNNPACK instead repacks the weights on every call,
 *   since they change every step);
 * - filter gradient: `dW[(kh, kw, ci)][co] = sum over positions of im2col[p][(kh, kw, ci)] * dy[p][co]`, the
 *   im2col chunk re-laid four columns interleaved (`[k/4][positions][4]`) and dy read in place, accumulated
 *   chunk by chunk into dW.
 *
 * Both need `co` to be a multiple of 8 (every ResNet convolution; the stem's input gradient is never taken)
 * and NHWC without dilation; {@link gemmConvEligible} says so, and callers keep XNNPACK otherwise.
 * Results match XNNPACK's to float32 rounding (the sums run in a different order and with fused
 * multiply-adds), and do not depend on chunk sizes except through that order, which is fixed per shape.
 * @module
 */
import type * as tf from '@tensorflow/tfjs'
import { gemmPoolFor, gemmThreadsOffReason } from './gemm-pool.js'
import { type GemmCall, type GemmKernels, gemmKernels, runGemm } from './simd/gemm.js'
import { addressOf, dispose, heapF32, heapMemory, simd, type WasmBackend } from './wasm-heap.js'

/** Bytes of operand a GEMM pass streams per row block; keeps it in L2 (256 KiB and up on current x86). */
const OPERAND_BYTES = 256 * 1024
/**
 * Bytes of im2col rows per forward chunk: the chunk and its packed copy stay in L2. But at least
 * {@link MIN_CHUNK_POSITIONS} positions: every chunk streams all the weights once, which costs more than L2
 * misses when the windows are long (ResNet's last stage: 4608 floats per window, 9.4 MB of weights).
 */
const IM2COL_BYTES = 128 * 1024
const MIN_CHUNK_POSITIONS = 256

export interface ConvGeometry {
  n: number
  ih: number
  iw: number
  ci: number
  oh: number
  ow: number
  co: number
  kh: number
  kw: number
  sh: number
  sw: number
  padTop: number
  padLeft: number
}

export function geometryOf(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    n: info.batchSize,
    ih: info.inHeight,
    iw: info.inWidth,
    ci: info.inChannels,
    oh: info.outHeight,
    ow: info.outWidth,
    co: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  }
}

/** The GEMM kernels for this backend's heap, or null (no relaxed SIMD, FMA turned off, threads not opted in, or a hidden heap). */
export function gemmFor(backend: WasmBackend): GemmKernels | null {
  if (gemmThreadsOffReason() !== null) return null
  const memory = heapMemory(backend)
  return memory && simd(backend) ? gemmKernels(memory) : null
}

/** A GEMM on every thread the engine has (see gemm-pool.ts), or on this one for small calls. */
function gemmRun(backend: WasmBackend, gemm: GemmKernels, call: GemmCall): void {
  const memory = heapMemory(backend)
  const pool = memory && call.rows >= 32 ? gemmPoolFor(memory) : null
  if (pool) pool.run(gemm, call)
  else runGemm(gemm, call)
}

export function gemmConvEligible(info: tf.backend_util.Conv2DInfo): boolean {
  return (
    info.dataFormat === 'channelsLast' &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    info.outChannels % 8 === 0 &&
    info.outChannels > 0 &&
    info.inChannels > 0
  )
}

/** Whether some window reaches outside x, so an im2col chunk has zeros to write. */
function isPadded(g: ConvGeometry): boolean {
  return (
    g.padTop > 0 ||
    g.padLeft > 0 ||
    (g.oh - 1) * g.sh + g.kh > g.ih + g.padTop ||
    (g.ow - 1) * g.sw + g.kw > g.iw + g.padLeft
  )
}

/**
 * A row of zeros as long as a window, where some window reaches outside x (else null): the chunk is zeroed from
 * it by one SIMD row copy (stride 0), since `TypedArray.fill` is several times slower on the threaded build's
 * shared heap.
 */
function zeroRow(backend: WasmBackend, g: ConvGeometry): tf.TensorInfo | null {
  if (!isPadded(g)) return null
  const row = backend.makeOutput([g.kh * g.kw * g.ci], 'float32')
  heapF32(backend, row).fill(0)
  return row
}

/**
 * Writes the im2col rows of output rows `[row0, row0 + rows)` (rows counted over batch and height) to `dst`
 * (byte address): row `(r - row0)*ow + x` holds the window of output pixel (r, x) as `[kh][kw][ci]`, zero where
 * the window leaves x (copied from `zeros`, the {@link zeroRow} of a padded convolution, else null).
 */
function im2col(
  backend: WasmBackend,
  x: tf.TensorInfo,
  g: ConvGeometry,
  row0: number,
  rows: number,
  dst: number,
  zeros: tf.TensorInfo | null
) {
  const kernels = simd(backend)!
  const xAt = addressOf(backend, x)
  const k = g.kh * g.kw * g.ci
  if (zeros) kernels.copyRows(addressOf(backend, zeros), 0, dst, k, rows * g.ow, k)
  for (let rr = 0; rr < rows; rr++) {
    const b = Math.floor((row0 + rr) / g.oh)
    const y = (row0 + rr) % g.oh
    for (let ky = 0; ky < g.kh; ky++) {
      const r = y * g.sh + ky - g.padTop
      if (r < 0 || r >= g.ih) continue
      for (let kx = 0; kx < g.kw; kx++) {
        // output columns whose input column x*sw + kx - padLeft lies in [0, iw)
        const x0 = Math.max(0, Math.ceil((g.padLeft - kx) / g.sw))
        const x1 = Math.min(g.ow, Math.floor((g.iw - 1 + g.padLeft - kx) / g.sw) + 1)
        if (x1 <= x0) continue
        const src = xAt + ((b * g.ih + r) * g.iw + x0 * g.sw + kx - g.padLeft) * g.ci * 4
        const to = dst + ((rr * g.ow + x0) * k + (ky * g.kw + kx) * g.ci) * 4
        kernels.copyRows(src, g.sw * g.ci, to, k, x1 - x0, g.ci)
      }
    }
  }
}

/** Output rows per forward chunk (see {@link IM2COL_BYTES}). */
function rowsPerChunk(g: ConvGeometry): number {
  const k = g.kh * g.kw * g.ci
  const positions = Math.max(MIN_CHUNK_POSITIONS, Math.floor(IM2COL_BYTES / (k * 4)))
  return Math.max(1, Math.floor(positions / g.ow))
}

/** Forward convolution `[n, oh, ow, co]` of x `[n, ih, iw, ci]` with filter `[kh, kw, ci, co]`. */
export function gemmConv2D(
  backend: WasmBackend,
  gemm: GemmKernels,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  g: ConvGeometry
): tf.TensorInfo {
  const k = g.kh * g.kw * g.ci
  const totalRows = g.n * g.oh
  const chunkRows = Math.min(totalRows, rowsPerChunk(g))
  const chunkPositions = chunkRows * g.ow
  const blocks = Math.ceil(chunkPositions / 4)
  const y = backend.makeOutput([g.n, g.oh, g.ow, g.co], 'float32')
  const rowsBuf = backend.makeOutput([chunkPositions, k], 'float32')
  const packed = backend.makeOutput([blocks * 4, k], 'float32')
  const kernels = simd(backend)!
  const zeros = zeroRow(backend, g)
  const rowsAt = addressOf(backend, rowsBuf)
  const packedAt = addressOf(backend, packed)
  const filterAt = addressOf(backend, filter)
  const yAt = addressOf(backend, y)
  // Inner-dimension slices whose weights fit in L2 (only the deep layers split).
  const kc = Math.max(8, Math.floor(OPERAND_BYTES / (g.co * 4)))
  for (let row0 = 0; row0 < totalRows; row0 += chunkRows) {
    const rows = Math.min(chunkRows, totalRows - row0)
    const positions = rows * g.ow
    im2col(backend, x, g, row0, rows, rowsAt, zeros)
    for (let blk = 0; blk * 4 < positions; blk++) {
      const r = Math.min(4, positions - blk * 4)
      kernels.transpose(rowsAt + blk * 16 * k, k, packedAt + blk * 16 * k, 4, r, k)
    }
    for (let k0 = 0; k0 < k; k0 += kc) {
      gemmRun(backend, gemm, {
        a: packedAt + k0 * 16,
        aStep: 16,
        aBlock: 16 * k,
        b: filterAt + k0 * g.co * 4,
        bStep: g.co * 4,
        bPanel: 32,
        c: yAt + row0 * g.ow * g.co * 4,
        ldc: g.co * 4,
        rows: positions,
        inner: Math.min(kc, k - k0),
        panels: g.co / 8,
        accumulate: k0 > 0,
      })
    }
  }
  dispose(backend, rowsBuf, packed, ...(zeros ? [zeros] : []))
  return y
}

/** Filter gradient `[kh, kw, ci, co]` from x `[n, ih, iw, ci]` and dy `[n, oh, ow, co]`. */
export function gemmConv2DBackpropFilter(
  backend: WasmBackend,
  gemm: GemmKernels,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  g: ConvGeometry
): tf.TensorInfo {
  const k = g.kh * g.kw * g.ci
  const totalRows = g.n * g.oh
  // Every row block of dW streams the chunk's dy (kept in L2) and a [positions][4] run of the packed im2col
  // chunk (kept in L1 across the panels).
  const positions = Math.min(256, Math.floor(OPERAND_BYTES / (g.co * 4)))
  const chunkRows = Math.min(totalRows, Math.max(1, Math.floor(positions / g.ow)))
  const dW = backend.makeOutput([g.kh, g.kw, g.ci, g.co], 'float32')
  const rowsBuf = backend.makeOutput([chunkRows * g.ow, k], 'float32')
  const packed = backend.makeOutput([chunkRows * g.ow, Math.ceil(k / 4) * 4], 'float32')
  const kernels = simd(backend)!
  const zeros = zeroRow(backend, g)
  const rowsAt = addressOf(backend, rowsBuf)
  const packedAt = addressOf(backend, packed)
  const dyAt = addressOf(backend, dy)
  const dWAt = addressOf(backend, dW)
  for (let row0 = 0; row0 < totalRows; row0 += chunkRows) {
    const rows = Math.min(chunkRows, totalRows - row0)
    const positions = rows * g.ow
    im2col(backend, x, g, row0, rows, rowsAt, zeros)
    // four columns of the chunk at a time, [k/4][positions][4]: each row block of dW reads one contiguous run
    for (let c0 = 0; c0 < k; c0 += 4) {
      kernels.copyRows(rowsAt + c0 * 4, k, packedAt + c0 * positions * 4, 4, positions, Math.min(4, k - c0))
    }
    gemmRun(backend, gemm, {
      a: packedAt,
      aStep: 16,
      aBlock: positions * 16,
      b: dyAt + row0 * g.ow * g.co * 4,
      bStep: g.co * 4,
      bPanel: 32,
      c: dWAt,
      ldc: g.co * 4,
      rows: k,
      inner: positions,
      panels: g.co / 8,
      accumulate: row0 > 0,
    })
  }
  dispose(backend, rowsBuf, packed, ...(zeros ? [zeros] : []))
  return dW
}
