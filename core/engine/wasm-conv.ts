/**
 * Convolutions for the wasm backend. Where the runtime has relaxed SIMD (Node 22+) every pass below that has
 * `co % 8 == 0` runs on the engine's own FMA GEMM (`wasm-gemm-conv.ts`); elsewhere, and for other shapes, they
 * run on XNNPACK's forward convolution or GEMM (20-33 GFLOP/s here), as described here.
 *
 * The stock wasm backend has no `Conv2DBackpropFilter` and a naive `Conv2DBackpropInput` (~3 GFLOP/s).
 * Both gradients are correlations too:
 *
 * - filter gradient: `dW[kh,kw,ci,co] = sum over (n,oh,ow) of x[n, oh*s+kh-pt, ow*s+kw-pl, ci] * dy[n,oh,ow,co]`
 *   is a GEMM of the transposed im2col of x with dy (see {@link conv2DBackpropFilter}); it measured 10-30%
 *   faster than the other forward-convolution form (x as a batch of `ci` images, dy as a dilated filter).
 * - input gradient: per stride phase, a stride-1 convolution of dy with the matching taps of the filter,
 *   spatially reversed with in/out channels swapped (see {@link conv2DBackpropInput}).
 * - forward: stock, except stride-1 convolutions with tiny outputs, which swap the roles of weights and
 *   activations (see {@link conv2D}).
 *
 * Padding comes from tfjs's own `computeConv2DInfo`, so 'same' (with TF's extra bottom/right row for even
 * inputs at stride 2), 'valid' and explicit numbers mean exactly what the forward op meant. Shapes this
 * cannot express (padding wider than the kernel) use the stock kernel; NCHW is not supported (neither is it
 * by the stock forward kernel).
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { gemmConv2D, gemmConv2DBackpropFilter, gemmConvEligible, gemmFor, geometryOf } from './wasm-gemm-conv.js'
import { fallback } from './wasm-memory.js'
import {
  asWasm,
  dispose,
  heapF32,
  type KernelArgs,
  addressOf,
  copyRowsInto,
  reshapeInfo,
  runWasmKernel,
  simd,
  transposeInto,
  type WasmBackend,
} from './wasm-heap.js'

type ConvAttrs = {
  strides: number | [number, number]
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding
  dataFormat: 'NHWC' | 'NCHW'
  dimRoundingMode?: 'floor' | 'round' | 'ceil'
  dilations?: number | [number, number]
}

function convInfo(xShape: number[], filterShape: number[], attrs: ConvAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat ?? 'NHWC')
  )
}

/** Forward XNNPACK convolution with explicit (possibly asymmetric) padding. */
function conv(
  backend: WasmBackend,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  pads: { top: number; bottom: number; left: number; right: number },
  dilations: [number, number],
  stockOnly = false
): tf.TensorInfo {
  const valid = pads.top === 0 && pads.bottom === 0 && pads.left === 0 && pads.right === 0
  const pad = valid
    ? 'valid'
    : [
        [0, 0],
        [pads.top, pads.bottom],
        [pads.left, pads.right],
        [0, 0],
      ]
  const call = {
    inputs: { x, filter },
    backend,
    attrs: { strides: [1, 1], pad, dilations, dataFormat: 'NHWC' } as unknown as tf.NamedAttrMap,
  }
  // Through the registered kernel, so small outputs take the swapped path; the swapped call itself has the
  // large image as input and goes straight to XNNPACK.
  return stockOnly ? fallback('Conv2D', call) : runWasmKernel('Conv2D', call)
}

/**
 * Output positions per GEMM chunk of the filter gradient. XNNPACK does not block the K dimension, so a
 * bounded chunk keeps the packed dy slice cache-resident; from 256 to 4096 measured the same here.
 */
const DW_GEMM_CHUNK = 1024

export function conv2DBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = asWasm(args.backend)
  const x = args.inputs['x']!
  const dy = args.inputs['dy']!
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] }
  const info = convInfo(x.shape, attrs.filterShape, { ...attrs, dilations: 1 })
  if (info.dataFormat !== 'channelsLast') {
    throw new Error('wasm Conv2DBackpropFilter supports NHWC only')
  }
  const gemm = gemmFor(backend)
  if (gemm && gemmConvEligible(info)) return gemmConv2DBackpropFilter(backend, gemm, x, dy, geometryOf(info))
  return filterGradGemm(backend, x, dy, info)
}

/**
 * Filter gradient as GEMMs over chunks of output positions: `dW[(t, ci), co] += A[(t, ci), p] * dy[p, co]`,
 * where A is the transposed im2col of x for the chunk's positions (built with SIMD transposes) and dy's rows
 * for the chunk are XNNPACK's packed operand. The result's rows are already `[kh, kw, ci]`.
 */
function filterGradGemm(
  backend: WasmBackend,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo
): tf.TensorInfo {
  const { batchSize: n, inHeight: ih, inWidth: iw, inChannels: ci, outHeight: oh, outWidth: ow } = info
  const { outChannels: co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info
  const pt = info.padInfo.top
  const pl = info.padInfo.left
  const taps = kh * kw
  const rowsM = taps * ci
  const perImage = oh * ow
  const imagesPerChunk = Math.max(1, Math.floor(DW_GEMM_CHUNK / perImage))
  // Some window reaches outside x: the zeros must be written.
  const padded = pt > 0 || pl > 0 || (oh - 1) * sh + kh > ih + pt || (ow - 1) * sw + kw > iw + pl
  let acc: tf.TensorInfo | undefined
  for (let b0 = 0; b0 < n; b0 += imagesPerChunk) {
    const nb = Math.min(imagesPerChunk, n - b0)
    const k = nb * perImage
    const a = backend.makeOutput([1, rowsM, k], 'float32')
    const bChunk = backend.makeOutput([1, k, co], 'float32')
    if (padded) heapF32(backend, a).fill(0)
    // Thousands of small transposes per chunk: resolve the addresses once.
    const kernels = simd(backend)
    const xAt = addressOf(backend, x)
    const aAt = addressOf(backend, a)
    const transpose = kernels
      ? (src: number, dst: number, rows: number) =>
          kernels.transpose(xAt + src * 4, sw * ci, aAt + dst * 4, k, rows, ci)
      : (src: number, dst: number, rows: number) => transposeInto(backend, x, src, sw * ci, a, dst, k, rows, ci)
    for (let bi = 0; bi < nb; bi++) {
      for (let y = 0; y < oh; y++) {
        for (let ky = 0; ky < kh; ky++) {
          const r = y * sh + ky - pt
          if (r < 0 || r >= ih) continue
          for (let kx = 0; kx < kw; kx++) {
            // output columns whose input column x*sw + kx - pl lies in [0, iw)
            const x0 = Math.max(0, Math.ceil((pl - kx) / sw))
            const x1 = Math.min(ow, Math.floor((iw - 1 + pl - kx) / sw) + 1)
            if (x1 <= x0) continue
            const src = (((b0 + bi) * ih + r) * iw + x0 * sw + kx - pl) * ci
            const dst = (ky * kw + kx) * ci * k + (bi * oh + y) * ow + x0
            transpose(src, dst, x1 - x0)
          }
        }
      }
    }
    copyRowsInto(backend, dy, b0 * perImage * co, 0, bChunk, 0, 0, 1, k * co)
    const part = runWasmKernel('BatchMatMul', {
      inputs: { a, b: bChunk },
      backend,
      attrs: { transposeA: false, transposeB: false } as unknown as tf.NamedAttrMap,
    })
    dispose(backend, a, bChunk)
    if (acc) {
      const sum = runWasmKernel('Add', { inputs: { a: acc, b: part }, backend })
      dispose(backend, acc, part)
      acc = sum
    } else {
      acc = part
    }
  }
  const dW = reshapeInfo(backend, acc!, [kh, kw, ci, co])
  dispose(backend, acc!)
  return dW
}

/** One stride phase of the input gradient along one axis (see {@link conv2DBackpropInput}). */
interface Phase {
  /** Input positions of this phase are `i = (qMin + u) * stride + residue - pad`, for u < count. */
  residue: number
  qMin: number
  count: number
  /** Kernel taps `residue + stride * j`, j < taps. */
  taps: number
  padBefore: number
  padAfter: number
}

function phasesOf(size: number, outSize: number, kernel: number, stride: number, pad: number): Phase[] {
  const phases: Phase[] = []
  for (let r = 0; r < stride; r++) {
    const taps = r < kernel ? Math.ceil((kernel - r) / stride) : 0
    const qMin = Math.ceil((pad - r) / stride)
    const qMax = Math.floor((size - 1 + pad - r) / stride)
    const count = Math.max(0, qMax - qMin + 1)
    const padBefore = taps - 1 - qMin
    const padAfter = count - outSize - padBefore + taps - 1
    phases.push({ residue: r, qMin, count, taps, padBefore, padAfter })
  }
  return phases
}

/**
 * Input gradient. At stride s the input positions split into s*s phases by `(i + pad) mod s`; each phase
 * only meets the kernel taps of the same residue, and is a stride-1 correlation of dy with that sub-kernel
 * (reversed, channels swapped). So each phase is one forward XNNPACK convolution with exactly the needed
 * multiply-adds (dilating dy instead would multiply by zeros s*s - 1 times out of s*s), and its output is
 * scattered into its rows and columns of dx. At stride 1 there is one phase and its output is dx.
 */
export function conv2DBackpropInput(args: KernelArgs): tf.TensorInfo {
  const backend = asWasm(args.backend)
  const dy = args.inputs['dy']!
  const filter = args.inputs['filter']!
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] }
  const info = convInfo(attrs.inputShape, filter.shape, { ...attrs, dilations: 1 })
  const { batchSize: n, inHeight: ih, inWidth: iw, inChannels: ci, outHeight: oh, outWidth: ow } = info
  const { outChannels: co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info
  const rows = phasesOf(ih, oh, kh, sh, info.padInfo.top)
  const cols = phasesOf(iw, ow, kw, sw, info.padInfo.left)
  const unsupported = (p: Phase) => p.taps > 0 && p.count > 0 && (p.padBefore < 0 || p.padAfter < 0)
  if (info.dataFormat !== 'channelsLast' || rows.some(unsupported) || cols.some(unsupported)) {
    return fallback('Conv2DBackpropInput', args)
  }

  const single = sh === 1 && sw === 1
  const dx = single ? undefined : backend.makeOutput([n, ih, iw, ci], 'float32')
  if (dx && (rows.some((p) => p.taps === 0) || cols.some((p) => p.taps === 0))) heapF32(backend, dx).fill(0)
  for (const pr of rows) {
    for (const pc of cols) {
      if (pr.count === 0 || pc.count === 0 || pr.taps === 0 || pc.taps === 0) continue
      // Sub-kernel [taps_r, taps_c, co, ci]: tap (j, l) holds W[r + s*(Jr-1-j), c + s*(Jc-1-l)] transposed.
      const sub = backend.makeOutput([pr.taps, pc.taps, co, ci], 'float32')
      for (let j = 0; j < pr.taps; j++) {
        for (let l = 0; l < pc.taps; l++) {
          const y = pr.residue + sh * (pr.taps - 1 - j)
          const x = pc.residue + sw * (pc.taps - 1 - l)
          transposeInto(backend, filter, (y * kw + x) * ci * co, co, sub, (j * pc.taps + l) * co * ci, ci, ci, co)
        }
      }
      const pads = { top: pr.padBefore, bottom: pr.padAfter, left: pc.padBefore, right: pc.padAfter }
      const out = conv(backend, dy, sub, pads, [1, 1])
      dispose(backend, sub)
      if (!dx) return out
      // Scatter the phase's [n, count_r, count_c, ci] into dx.
      for (let b = 0; b < n; b++) {
        for (let u = 0; u < pr.count; u++) {
          const y = (pr.qMin + u) * sh + pr.residue - info.padInfo.top
          const s = (b * pr.count + u) * pc.count * ci
          const d = ((b * ih + y) * iw + (pc.qMin * sw + pc.residue - info.padInfo.left)) * ci
          copyRowsInto(backend, out, s, ci, dx, d, sw * ci, pc.count, ci)
        }
      }
      dispose(backend, out)
    }
  }
  if (!dx) throw new Error('wasm Conv2DBackpropInput: no phase computed')
  return dx
}

/** XNNPACK's cost to take a new filter: tfjs transposes it to OHWI, then XNNPACK packs it (measured here). */
const PACK_NS_PER_FLOAT = 17
/** XNNPACK's convolution speed here, in multiply-adds per nanosecond. */
const MACS_PER_NS = 11
/** Our strided JS transposes, per float. */
const TRANSPOSE_NS_PER_FLOAT = 3

/**
 * Forward convolution. Stride 1 with a tiny output (ResNet's last stage at 64 px: 2x2 pixels, 3x3x512x512
 * weights) swaps the roles of image and filter: the weights become a batch of `co` images
 * `[co, kh, kw, ci]` and the activations become the filter `[h, w, ci, n]`. XNNPACK then packs the small
 * activations instead of 2.4M weights every call (the weights change every step), and only the taps that
 * touch real pixels are multiplied (2x2 of 3x3 there): ~20 ms instead of ~55 ms per call. The output
 * `[co, oh, ow, n]` comes out spatially reversed and is transposed back. Everything else: stock kernel.
 */
export function conv2D(args: KernelArgs): tf.TensorInfo {
  const backend = asWasm(args.backend)
  const x = args.inputs['x']!
  const filter = args.inputs['filter']!
  const attrs = args.attrs as unknown as ConvAttrs
  const info = convInfo(x.shape, filter.shape, attrs)
  const { batchSize: n, inHeight: ih, inWidth: iw, inChannels: ci, outHeight: oh, outWidth: ow } = info
  const { outChannels: co, filterHeight: kh, filterWidth: kw } = info
  const gemm = gemmConvEligible(info) && x.dtype === 'float32' && filter.dtype === 'float32' ? gemmFor(backend) : null
  const standardKernel = () =>
    gemm ? gemmConv2D(backend, gemm, x, filter, geometryOf(info)) : fallback('Conv2D', args)
  const plain =
    info.dataFormat === 'channelsLast' &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    x.dtype === 'float32' &&
    filter.dtype === 'float32'
  if (!plain) return standardKernel()
  // The swapped input: the weights padded (or cropped) so that a valid correlation yields oh x ow outputs.
  const lh = oh + ih - 1
  const lw = ow + iw - 1
  const weights = kh * kw * ci * co
  // Our GEMM reads the weights in place; XNNPACK packs them first.
  const standard = (gemm ? 0 : PACK_NS_PER_FLOAT * weights) + (n * oh * ow * co * kh * kw * ci) / MACS_PER_NS
  const swapped =
    TRANSPOSE_NS_PER_FLOAT * (co * lh * lw * ci + 2 * n * ih * iw * ci + n * oh * ow * co) +
    PACK_NS_PER_FLOAT * n * ih * iw * ci +
    (co * oh * ow * ih * iw * ci * n) / MACS_PER_NS
  if (swapped > 0.8 * standard) return standardKernel()

  const top = oh - 1 - info.padInfo.top
  const left = ow - 1 - info.padInfo.left
  const image = backend.makeOutput([co, lh, lw, ci], 'float32')
  const xFilter = backend.makeOutput([ih, iw, ci, n], 'float32')
  heapF32(backend, image).fill(0)
  for (let k = 0; k < lh; k++) {
    const a = k - top
    if (a < 0 || a >= kh) continue
    for (let l = 0; l < lw; l++) {
      const b = l - left
      if (b < 0 || b >= kw) continue
      // Tap (a, b) of W is [ci, co]; it becomes pixel (k, l) of every image o: [co][..][ci].
      transposeInto(backend, filter, (a * kw + b) * ci * co, co, image, (k * lw + l) * ci, lh * lw * ci, ci, co)
    }
  }
  for (let q = 0; q < ih * iw; q++) transposeInto(backend, x, q * ci, ih * iw * ci, xFilter, q * ci * n, n, n, ci)
  const z = conv(backend, image, xFilter, { top: 0, bottom: 0, left: 0, right: 0 }, [1, 1], true)
  dispose(backend, image, xFilter)
  const y = backend.makeOutput([n, oh, ow, co], 'float32')
  for (let u = 0; u < oh; u++) {
    for (let v = 0; v < ow; v++) {
      const d = ((oh - 1 - u) * ow + (ow - 1 - v)) * co
      transposeInto(backend, z, (u * ow + v) * n, oh * ow * n, y, d, oh * ow * co, co, n)
    }
  }
  dispose(backend, z)
  return y
}

/**
 * The served model's convolution (BatchNorm folded into a bias, ReLU fused: `core/inference-model.ts`). On our
 * GEMM where it runs the convolutions, with the bias and ReLU applied after it by the stock element-wise kernels;
 * other activations, PReLU weights and shapes the GEMM does not take keep the stock fused XNNPACK kernel.
 */
export function fusedConv2D(args: KernelArgs): tf.TensorInfo {
  const backend = asWasm(args.backend)
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>
  const attrs = args.attrs as unknown as ConvAttrs & { activation?: string }
  const activation = attrs.activation ?? 'linear'
  const info = convInfo(x!.shape, filter!.shape, attrs)
  const simple =
    !preluActivationWeights &&
    (activation === 'linear' || activation === 'relu') &&
    (!bias || (bias.shape.length === 1 && bias.shape[0] === info.outChannels)) &&
    gemmConvEligible(info) &&
    [x, filter, bias].every((t) => !t || t.dtype === 'float32')
  const gemm = simple ? gemmFor(backend) : null
  if (!gemm) return fallback('FusedConv2D', args)
  let y = gemmConv2D(backend, gemm, x!, filter!, geometryOf(info))
  if (bias) {
    const biased = runWasmKernel('Add', { inputs: { a: y, b: bias }, backend })
    dispose(backend, y)
    y = biased
  }
  if (activation === 'relu') {
    const rectified = runWasmKernel('Relu', { inputs: { x: y }, backend })
    dispose(backend, y)
    y = rectified
  }
  return y
}
