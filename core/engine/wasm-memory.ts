/**
 * Memory-moving kernels for the wasm backend that copy on the heap with native `TypedArray.set` and
 * `copyWithin` instead of the stock kernels' paths (a full `readSync` copy of the input per `Slice`, element
 * loops in C for `Tile`, a copy for `Identity`).
 *
 * Each kernel handles float32, int32 and bool; anything else (strings) goes to the stock kernel.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { addressOf, asWasm, heapView, type KernelArgs, runWasmKernel, simd, sizeOf, stridesOf } from './wasm-heap.js'

const stock = new Map<string, tf.KernelConfig>()
const setUp = new WeakMap<object, Set<string>>()

/** Remembers stock kernels for the dtypes and shapes these do not handle. */
export function setStockKernel(name: string, config: tf.KernelConfig | undefined): void {
  if (config) stock.set(name, config)
}

/**
 * Runs the stock kernel. Its setup hook (which binds its C function) ran only if it was still registered when
 * the backend initialized, so it is run here once per backend instance.
 */
export function fallback(name: string, args: KernelArgs): tf.TensorInfo {
  const config = stock.get(name)
  if (!config) throw new Error(`wasm ${name}: unsupported input and no stock kernel`)
  let done = setUp.get(args.backend)
  if (!done) {
    done = new Set()
    setUp.set(args.backend, done)
  }
  if (!done.has(name)) {
    config.setupFunc?.(args.backend)
    done.add(name)
  }
  return config.kernelFunc(args) as tf.TensorInfo
}

const NUMERIC = new Set(['float32', 'int32', 'bool'])

/**
 * Identity shares the input's memory (reference counted), as the cpu backend does: tensors are immutable,
 * and variables swap their data id on assign rather than writing in place.
 */
export function identity(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs['x']!
  if (!NUMERIC.has(x.dtype)) return fallback('Identity', args)
  asWasm(args.backend).incRef(x.dataId)
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype }
}

/** Tile by copying the input once and then doubling the filled span with `copyWithin`, axis by axis. */
export function tile(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs['x']!
  if (!NUMERIC.has(x.dtype)) return fallback('Tile', args)
  const backend = asWasm(args.backend)
  const reps = (args.attrs!['reps'] as number[]).map(Number)
  const rank = x.shape.length
  const outShape = x.shape.map((d, i) => d * reps[i]!)
  const out = backend.makeOutput(outShape, x.dtype)
  if (sizeOf(outShape) === 0) return out
  const src = heapView(backend, x)
  const dst = heapView(backend, out)
  if (rank === 0) {
    dst[0] = src[0]!
    return out
  }
  const xStrides = stridesOf(x.shape)
  const outStrides = stridesOf(outShape)
  const fill = (axis: number, s: number, d: number): void => {
    const n = x.shape[axis]!
    const block = n * outStrides[axis]!
    if (axis === rank - 1) {
      dst.set(src.subarray(s, s + n), d)
    } else {
      for (let i = 0; i < n; i++) fill(axis + 1, s + i * xStrides[axis]!, d + i * outStrides[axis]!)
    }
    repeat(dst, d, block, reps[axis]!)
  }
  fill(0, 0, 0)
  return out
}

/** dst[d + block*k .. ] = dst[d .. d+block] for k < times, in log2(times) copies. */
function repeat(
  dst: { copyWithin(target: number, start: number, end: number): unknown },
  d: number,
  block: number,
  times: number
) {
  let filled = 1
  while (filled < times) {
    const n = Math.min(filled, times - filled)
    dst.copyWithin(d + filled * block, d, d + n * block)
    filled += n
  }
}

/**
 * Slice with runs as long as the layout allows: trailing axes taken whole are merged into one contiguous run.
 */
export function slice(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs['x']!
  if (!NUMERIC.has(x.dtype)) return fallback('Slice', args)
  const backend = asWasm(args.backend)
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as unknown as tf.Tensor,
    args.attrs!['begin'] as number[],
    args.attrs!['size'] as number[]
  ) as [number[], number[]]
  const out = backend.makeOutput(size, x.dtype)
  if (sizeOf(size) === 0) return out
  copyBox(heapView(backend, x), x.shape, begin, heapView(backend, out), size, new Array(size.length).fill(0), size)
  return out
}

/** Constant padding: fill, then one box copy of the input. */
export function padV2(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs['x']!
  if (!NUMERIC.has(x.dtype)) return fallback('PadV2', args)
  const backend = asWasm(args.backend)
  const paddings = args.attrs!['paddings'] as Array<[number, number]>
  const constantValue = Number(args.attrs!['constantValue'] ?? 0)
  const outShape = x.shape.map((d, i) => paddings[i]![0] + d + paddings[i]![1])
  const out = backend.makeOutput(outShape, x.dtype)
  if (sizeOf(outShape) === 0) return out
  const dst = heapView(backend, out)
  const inner = paddings.every(([before, after], i) => i === 0 || (before === 0 && after === 0))
  // Only the margins need the constant when the padding is on the outermost axis alone.
  if (inner && x.shape.length > 0) {
    const row = sizeOf(x.shape.slice(1))
    dst.fill(constantValue, 0, paddings[0]![0] * row)
    dst.fill(constantValue, (paddings[0]![0] + x.shape[0]!) * row)
  } else {
    dst.fill(constantValue)
  }
  if (sizeOf(x.shape) === 0) return out
  copyBox(
    heapView(backend, x),
    x.shape,
    new Array(x.shape.length).fill(0),
    dst,
    outShape,
    paddings.map((p) => p[0]),
    x.shape
  )
  return out
}

/**
 * Copies the box `[srcBegin, srcBegin+box)` of a `srcShape` array into `[dstBegin, dstBegin+box)` of a
 * `dstShape` array, with one `set` per run of contiguous elements.
 */
export function copyBox(
  src: Float32Array | Int32Array | Uint8Array,
  srcShape: readonly number[],
  srcBegin: readonly number[],
  dst: Float32Array | Int32Array | Uint8Array,
  dstShape: readonly number[],
  dstBegin: readonly number[],
  box: readonly number[]
): void {
  const rank = box.length
  if (rank === 0) {
    dst[0] = src[0]!
    return
  }
  // Merge trailing axes while both arrays hold them whole.
  let inner = rank - 1
  let run = box[inner]!
  while (inner > 0 && box[inner] === srcShape[inner] && box[inner] === dstShape[inner]) {
    inner--
    run *= box[inner]!
  }
  const srcStrides = stridesOf(srcShape)
  const dstStrides = stridesOf(dstShape)
  let s0 = 0
  let d0 = 0
  for (let a = 0; a < rank; a++) {
    s0 += srcBegin[a]! * srcStrides[a]!
    d0 += dstBegin[a]! * dstStrides[a]!
  }
  if (inner === 0) {
    dst.set(src.subarray(s0, s0 + run), d0)
    return
  }
  // Odometer over the axes before `inner`.
  const counts = box.slice(0, inner)
  const index = new Array<number>(inner).fill(0)
  let s = s0
  let d = d0
  const total = sizeOf(counts)
  const copyTiny = run <= 8
  for (let k = 0; k < total; k++) {
    if (copyTiny) {
      for (let j = 0; j < run; j++) dst[d + j] = src[s + j]!
    } else {
      dst.set(src.subarray(s, s + run), d)
    }
    for (let a = inner - 1; a >= 0; a--) {
      index[a]!++
      s += srcStrides[a]!
      d += dstStrides[a]!
      if (index[a]! < counts[a]!) break
      s -= counts[a]! * srcStrides[a]!
      d -= counts[a]! * dstStrides[a]!
      index[a] = 0
    }
  }
}

/**
 * Sum over leading axes (`[n, h, w, c] -> [c]`, what BatchNorm gradients and bias gradients need): the stock
 * kernel first transposes the whole input to put the reduced axes last; this sums rows in place, in float64
 * like the cpu backend. Other axis patterns go to the stock kernel.
 */
export function sum(args: KernelArgs): tf.TensorInfo {
  return reduceLeading('Sum', args, false)
}

export function mean(args: KernelArgs): tf.TensorInfo {
  return reduceLeading('Mean', args, true)
}

function reduceLeading(name: 'Sum' | 'Mean', args: KernelArgs, average: boolean): tf.TensorInfo {
  const x = args.inputs['x']!
  const rank = x.shape.length
  if (x.dtype !== 'float32' || rank < 2) return fallback(name, args)
  const axes = tf.util.parseAxisParam(args.attrs!['axis'] as number | number[], x.shape).sort((a, b) => a - b)
  const k = axes.length
  if (k === 0 || k === rank || axes.some((a, i) => a !== i)) return fallback(name, args)
  const backend = asWasm(args.backend)
  const keep = x.shape.slice(k)
  const outShape = args.attrs!['keepDims'] ? [...new Array<number>(k).fill(1), ...keep] : keep
  const rows = sizeOf(x.shape.slice(0, k))
  const cols = sizeOf(keep)
  const scale = average ? 1 / rows : 1
  // [n, h, w, c] over (n, h, w): XNNPACK's average pooling does the h*w part at memory speed (about 2.5x a
  // JS loop here), leaving n rows for JS.
  if (rank === 4 && k === 3 && x.shape[1]! * x.shape[2]! > 1) {
    const [n, h, w] = x.shape as [number, number, number, number]
    const pooled = runWasmKernel('AvgPool', {
      inputs: { x },
      backend,
      attrs: { filterSize: [h, w], strides: [h, w], pad: 'valid', dimRoundingMode: null } as unknown as tf.NamedAttrMap,
    })
    const out = backend.makeOutput(outShape, 'float32')
    const acc = columnSums(heapView(backend, pooled) as Float32Array, n, cols)
    const dst = heapView(backend, out) as Float32Array
    const poolScale = h * w * scale
    for (let c = 0; c < cols; c++) dst[c] = acc[c]! * poolScale
    backend.disposeData(pooled.dataId)
    return out
  }
  const out = backend.makeOutput(outShape, 'float32')
  const acc = columnSums(heapView(backend, x) as Float32Array, rows, cols)
  const dst = heapView(backend, out) as Float32Array
  for (let c = 0; c < cols; c++) dst[c] = acc[c]! * scale
  return out
}

/** Column sums of a row-major [rows, cols] array in float64, four rows per pass. */
function columnSums(src: Float32Array, rows: number, cols: number): Float64Array {
  const acc = new Float64Array(cols)
  let r = 0
  for (; r + 4 <= rows; r += 4) {
    const b0 = r * cols
    const b1 = b0 + cols
    const b2 = b1 + cols
    const b3 = b2 + cols
    for (let c = 0; c < cols; c++) acc[c]! += src[b0 + c]! + src[b1 + c]! + (src[b2 + c]! + src[b3 + c]!)
  }
  for (; r < rows; r++) {
    const b = r * cols
    for (let c = 0; c < cols; c++) acc[c]! += src[b + c]!
  }
  return acc
}

/**
 * Max-pool gradient: each dy goes to the first maximum of its window (row-major, strict `>`, like the cpu
 * backend), found for all channels of a pixel at once so reads stay contiguous.
 */
export function maxPoolGrad(args: KernelArgs): tf.TensorInfo {
  const dy = args.inputs['dy']!
  const input = args.inputs['input']!
  if (input.dtype !== 'float32' || dy.dtype !== 'float32') return fallback('MaxPoolGrad', args)
  const attrs = args.attrs!
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs['filterSize'] as [number, number] | number,
    attrs['strides'] as [number, number] | number,
    1,
    attrs['pad'] as 'valid' | 'same' | number,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined
  )
  if (info.dataFormat !== 'channelsLast') return fallback('MaxPoolGrad', args)
  const backend = asWasm(args.backend)
  const dx = backend.makeOutput([...input.shape], 'float32')
  const kernels = simd(backend)
  if (kernels && info.inChannels % 4 === 0) {
    const scratch = backend.makeOutput([2 * info.inChannels], 'float32')
    heapView(backend, dx).fill(0)
    kernels.maxPoolGrad(
      addressOf(backend, input),
      addressOf(backend, dy),
      addressOf(backend, dx),
      addressOf(backend, scratch),
      info.batchSize,
      info.inHeight,
      info.inWidth,
      info.inChannels,
      info.outHeight,
      info.outWidth,
      info.strideHeight,
      info.strideWidth,
      info.effectiveFilterHeight,
      info.effectiveFilterWidth,
      info.padInfo.top,
      info.padInfo.left
    )
    backend.disposeData(scratch.dataId)
    return dx
  }
  const xs = heapView(backend, input) as Float32Array
  const dys = heapView(backend, dy) as Float32Array
  const out = heapView(backend, dx) as Float32Array
  out.fill(0)
  const { batchSize, inHeight: ih, inWidth: iw, inChannels: c, outHeight: oh, outWidth: ow } = info
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info
  const best = new Float32Array(c)
  const where = new Int32Array(c)
  for (let b = 0; b < batchSize; b++) {
    for (let y = 0; y < oh; y++) {
      const y0 = y * sh - info.padInfo.top
      const yMin = Math.max(0, y0)
      const yMax = Math.min(ih, y0 + fh)
      for (let x = 0; x < ow; x++) {
        const x0 = x * sw - info.padInfo.left
        const xMin = Math.max(0, x0)
        const xMax = Math.min(iw, x0 + fw)
        best.fill(-Infinity)
        where.fill(-1)
        for (let yy = yMin; yy < yMax; yy++) {
          for (let xx = xMin; xx < xMax; xx++) {
            const base = ((b * ih + yy) * iw + xx) * c
            for (let d = 0; d < c; d++) {
              const v = xs[base + d]!
              if (v > best[d]!) {
                best[d] = v
                where[d] = base + d
              }
            }
          }
        }
        const o = ((b * oh + y) * ow + x) * c
        for (let d = 0; d < c; d++) {
          const at = where[d]!
          if (at >= 0) out[at]! += dys[o + d]!
        }
      }
    }
  }
  return dx
}

/**
 * The BatchNorm training gradient (see `batch-norm.ts`): `[dx, dgamma, dbeta]` from dy, x and the batch
 * statistics, in two SIMD passes (channel sums, then dx) when channels are a multiple of 4, else in JS.
 */
export function batchNormTrainingGrad(args: KernelArgs): tf.TensorInfo[] {
  const backend = asWasm(args.backend)
  const { dy, x, mean, variance, gamma } = args.inputs as Record<string, tf.TensorInfo>
  const epsilon = Number(args.attrs!['epsilon'])
  const c = x!.shape[x!.shape.length - 1]!
  const rows = sizeOf(x!.shape) / c
  const dx = backend.makeOutput([...x!.shape], 'float32')
  const dgamma = backend.makeOutput([c], 'float32')
  const dbeta = backend.makeOutput([c], 'float32')
  const scratch = backend.makeOutput([4 * c], 'float32')
  const kernels = simd(backend)
  const useSimd = kernels !== null && c % 4 === 0
  let sumDy: Float64Array | Float32Array
  let sumDyXc: Float64Array | Float32Array
  if (useSimd) {
    kernels.bnGradSums(
      addressOf(backend, dy!),
      addressOf(backend, x!),
      addressOf(backend, mean!),
      rows,
      c,
      addressOf(backend, scratch)
    )
    const s = heapView(backend, scratch) as Float32Array
    sumDy = s.slice(0, c)
    sumDyXc = s.slice(c, 2 * c)
  } else {
    const dys = heapView(backend, dy!) as Float32Array
    const xs = heapView(backend, x!) as Float32Array
    const ms = heapView(backend, mean!) as Float32Array
    sumDy = new Float64Array(c)
    sumDyXc = new Float64Array(c)
    for (let r = 0, o = 0; r < rows; r++, o += c) {
      for (let j = 0; j < c; j++) {
        const d = dys[o + j]!
        sumDy[j]! += d
        sumDyXc[j]! += d * (xs[o + j]! - ms[j]!)
      }
    }
  }
  // Per channel: dx = a*dy + b*(x - mean) + k.
  const vs = heapView(backend, variance!) as Float32Array
  const gs = heapView(backend, gamma!) as Float32Array
  const ms = heapView(backend, mean!) as Float32Array
  const coef = heapView(backend, scratch) as Float32Array
  const dg = heapView(backend, dgamma) as Float32Array
  const db = heapView(backend, dbeta) as Float32Array
  for (let j = 0; j < c; j++) {
    const rstd = 1 / Math.sqrt(vs[j]! + epsilon)
    const a = gs[j]! * rstd
    db[j] = sumDy[j]!
    dg[j] = sumDyXc[j]! * rstd
    coef[j] = ms[j]!
    coef[c + j] = a
    coef[2 * c + j] = (-a * rstd * rstd * sumDyXc[j]!) / rows
    coef[3 * c + j] = (-a * sumDy[j]!) / rows
  }
  if (useSimd) {
    kernels.bnGradApply(
      addressOf(backend, dy!),
      addressOf(backend, x!),
      addressOf(backend, dx),
      rows,
      c,
      addressOf(backend, scratch)
    )
  } else {
    const dys = heapView(backend, dy!) as Float32Array
    const xs = heapView(backend, x!) as Float32Array
    const out = heapView(backend, dx) as Float32Array
    for (let r = 0, o = 0; r < rows; r++, o += c) {
      for (let j = 0; j < c; j++) {
        out[o + j] = dys[o + j]! * coef[c + j]! + (xs[o + j]! - coef[j]!) * coef[2 * c + j]! + coef[3 * c + j]!
      }
    }
  }
  backend.disposeData(scratch.dataId)
  return [dx, dgamma, dbeta]
}
