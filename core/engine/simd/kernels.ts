/**
 * SIMD loops that run on the wasm backend's own heap (the module imports its `WebAssembly.Memory`, so
 * tensors are addressed by their `memoryOffset` with no copies):
 *
 * - `adam`: Adam's whole update in one pass, f32 lanes, the same operations in the same order as
 *   `tf.train.adam` (so the same float32 roundings, hence never FMA): ~10x the JS loop, which is bound by
 *   scalar sqrt/div.
 * - `transpose`: strided 2D transpose in 4x4 register blocks, for the convolution kernels' re-layouts.
 * - `copyRows`: strided row copies, 16 bytes at a time, for the convolution kernels' chunks and scatters.
 * - `maxPoolGrad`: the max-pool gradient, NHWC, 4 channels per lane group (first maximum wins, as on cpu).
 * - `bnGradSums`, `bnGradApply`: the BatchNorm training gradient's two passes (channel sums, then dx).
 * - `blend`: `out = a·d + b·e` in one pass, for the weight average (the same float32 roundings as tfjs's
 *   `add(mul(a, d), mul(b, e))`, hence never FMA).
 *
 * The module comes in two variants: where the runtime has relaxed SIMD (Node 22+) the BatchNorm gradient
 * kernels use `f32x4.relaxed_madd` (a fused multiply-add on CPUs with FMA), elsewhere plain `f32x4.mul` +
 * `f32x4.add`; {@link setSimdFmaEnabled} forces the plain one. The other kernels have no multiply-add to fuse
 * (adam's is kept unfused on purpose, see above).
 *
 * Pointers are byte offsets into the heap; strides and sizes count float32 elements.
 * @module
 */
import { assemble, type Code, F32, I32, V128 } from './assembler.js'

export interface SimdKernels {
  adam(
    g: number,
    m: number,
    v: number,
    w: number,
    mOut: number,
    vOut: number,
    wOut: number,
    n: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    oneMinusAccBeta1: number,
    oneMinusAccBeta2: number,
    negLearningRate: number,
    epsilon: number
  ): void
  transpose(src: number, srcStride: number, dst: number, dstStride: number, rows: number, cols: number): void
  /**
   * Max-pool gradient, NHWC, channels a multiple of 4; `dx` must be zeroed; `scratch` holds 2*c floats.
   * Each dy goes to the first maximum of its window (row-major, strict `>`), as on the cpu backend.
   */
  maxPoolGrad(
    x: number,
    dy: number,
    dx: number,
    scratch: number,
    n: number,
    ih: number,
    iw: number,
    c: number,
    oh: number,
    ow: number,
    sh: number,
    sw: number,
    fh: number,
    fw: number,
    padTop: number,
    padLeft: number
  ): void
  copyRows(src: number, srcStride: number, dst: number, dstStride: number, rows: number, len: number): void
  bnGradSums(dy: number, x: number, mean: number, rows: number, c: number, scratch: number): void
  bnGradApply(dy: number, x: number, dx: number, rows: number, c: number, coef: number): void
  /** `out[i] = a[i]·d + b[i]·e` for `n` floats, each product and the sum rounded to float32 (no FMA). */
  blend(a: number, b: number, out: number, n: number, d: number, e: number): void
}

/** Locals are numbered after the parameters; this hands them out by name. */
function locals(first: number, names: Record<string, typeof I32 | typeof F32 | typeof V128>) {
  const index: Record<string, number> = {}
  let i = first
  for (const name of Object.keys(names)) index[name] = i++
  return { index, types: Object.values(names) as Array<typeof I32 | typeof F32 | typeof V128> }
}

/**
 * No FMA here, on purpose, even where the runtime has relaxed SIMD: this kernel performs `tf.train.adam`'s
 * exact operations (separate mul and add, each rounded to float32) so its results match the stock optimizer
 * bit for bit; a fused multiply-add rounds once and would drift from it.
 */
function adamBody() {
  // params 0-7: g m v w mOut vOut wOut n ; 8-15: b1 c1 b2 c2 d1 d2 step eps
  const P = {
    g: 0,
    m: 1,
    v: 2,
    w: 3,
    mo: 4,
    vo: 5,
    wo: 6,
    n: 7,
    b1: 8,
    c1: 9,
    b2: 10,
    c2: 11,
    d1: 12,
    d2: 13,
    step: 14,
    eps: 15,
  }
  const L = locals(16, {
    o: I32,
    end: I32,
    b1: V128,
    c1: V128,
    b2: V128,
    c2: V128,
    d1: V128,
    d2: V128,
    step: V128,
    eps: V128,
    gv: V128,
    mv: V128,
    vv: V128,
    gs: F32,
    ms: F32,
    vs: F32,
  })
  const l = L.index as Record<string, number>
  const body = (c: Code) => {
    for (const k of ['b1', 'c1', 'b2', 'c2', 'd1', 'd2', 'step', 'eps'] as const) c.get(P[k]).f32x4Splat().set(l[k]!)
    // end = (n & ~3) * 4 bytes
    c.get(P.n).i32(~3).and().i32(2).shl().set(l['end']!)
    c.i32(0).set(l['o']!)
    const at = (base: number) => c.get(base).get(l['o']!).add()
    c.loop(() => {
      c.get(l['o']!).get(l['end']!).geS().breakIf()
      at(P.g).v128Load().set(l['gv']!)
      // m' = m*b1 + g*(1-b1)
      at(P.m).v128Load().get(l['b1']!).f32x4Mul().get(l['gv']!).get(l['c1']!).f32x4Mul().f32x4Add().set(l['mv']!)
      // v' = v*b2 + g*g*(1-b2)
      at(P.v).v128Load().get(l['b2']!).f32x4Mul()
      c.get(l['gv']!).get(l['gv']!).f32x4Mul().get(l['c2']!).f32x4Mul().f32x4Add().set(l['vv']!)
      at(P.mo).get(l['mv']!).v128Store()
      at(P.vo).get(l['vv']!).v128Store()
      // w' = (m'/(1-acc1)) / (sqrt(v'/(1-acc2)) + eps) * (-lr) + w
      at(P.wo)
      c.get(l['mv']!).get(l['d1']!).f32x4Div()
      c.get(l['vv']!).get(l['d2']!).f32x4Div().f32x4Sqrt().get(l['eps']!).f32x4Add()
      c.f32x4Div().get(l['step']!).f32x4Mul()
      at(P.w).v128Load().f32x4Add().v128Store()
      c.get(l['o']!).i32(16).add().set(l['o']!)
      c.i32(1).continueIf()
    })
    // Scalar tail: the same formula on the last n % 4 elements.
    c.get(P.n).i32(2).shl().set(l['end']!)
    c.loop(() => {
      c.get(l['o']!).get(l['end']!).geS().breakIf()
      at(P.g).f32Load().set(l['gs']!)
      at(P.m).f32Load().get(P.b1).f32Mul().get(l['gs']!).get(P.c1).f32Mul().f32Add().set(l['ms']!)
      at(P.v)
        .f32Load()
        .get(P.b2)
        .f32Mul()
        .get(l['gs']!)
        .get(l['gs']!)
        .f32Mul()
        .get(P.c2)
        .f32Mul()
        .f32Add()
        .set(l['vs']!)
      at(P.mo).get(l['ms']!).f32Store()
      at(P.vo).get(l['vs']!).f32Store()
      at(P.wo)
      c.get(l['ms']!).get(P.d1).f32Div()
      c.get(l['vs']!).get(P.d2).f32Div().f32Sqrt().get(P.eps).f32Add()
      c.f32Div().get(P.step).f32Mul()
      at(P.w).f32Load().f32Add().f32Store()
      c.get(l['o']!).i32(4).add().set(l['o']!)
      c.i32(1).continueIf()
    })
  }
  return { name: 'adam', params: [...new Array(8).fill(I32), ...new Array(8).fill(F32)], locals: L.types, body }
}

/** `out = a·d + b·e`, mul, mul, add as tfjs runs them (so bit for bit the same; no FMA, as in adam). */
function blendBody() {
  const P = { a: 0, b: 1, out: 2, n: 3, d: 4, e: 5 }
  const L = locals(6, { o: I32, end: I32, d: V128, e: V128 })
  const l = L.index as Record<string, number>
  const body = (c: Code) => {
    c.get(P.d).f32x4Splat().set(l['d']!)
    c.get(P.e).f32x4Splat().set(l['e']!)
    c.get(P.n).i32(~3).and().i32(2).shl().set(l['end']!)
    c.i32(0).set(l['o']!)
    const at = (base: number) => c.get(base).get(l['o']!).add()
    c.loop(() => {
      c.get(l['o']!).get(l['end']!).geS().breakIf()
      at(P.out)
      at(P.a).v128Load().get(l['d']!).f32x4Mul()
      at(P.b).v128Load().get(l['e']!).f32x4Mul()
      c.f32x4Add().v128Store()
      c.get(l['o']!).i32(16).add().set(l['o']!)
      c.i32(1).continueIf()
    })
    c.get(P.n).i32(2).shl().set(l['end']!)
    c.loop(() => {
      c.get(l['o']!).get(l['end']!).geS().breakIf()
      at(P.out)
      at(P.a).f32Load().get(P.d).f32Mul()
      at(P.b).f32Load().get(P.e).f32Mul()
      c.f32Add().f32Store()
      c.get(l['o']!).i32(4).add().set(l['o']!)
      c.i32(1).continueIf()
    })
  }
  return { name: 'blend', params: [I32, I32, I32, I32, F32, F32], locals: L.types, body }
}

function transposeBody() {
  // params: src sStride dst dStride rows cols (pointers in bytes, strides and sizes in floats)
  const P = { src: 0, ss: 1, dst: 2, ds: 3, rows: 4, cols: 5 }
  const L = locals(6, {
    i: I32,
    j: I32,
    k: I32,
    s: I32,
    d: I32,
    ss4: I32,
    ds4: I32,
    t0: V128,
    t1: V128,
    t2: V128,
    t3: V128,
  })
  const l = L.index as Record<string, number>
  const body = (c: Code) => {
    const [i, j, k, s, d, ss4, ds4] = ['i', 'j', 'k', 's', 'd', 'ss4', 'ds4'].map((n) => l[n]!) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ]
    const [t0, t1, t2, t3] = ['t0', 't1', 't2', 't3'].map((n) => l[n]!) as [number, number, number, number]
    /** Pushes the byte address src + (row*ss + col)*4 (or dst's), from locals. */
    const srcAt = (row: number, col: number) => c.get(P.src).get(row).get(P.ss).mul().get(col).add().i32(2).shl().add()
    const dstAt = (row: number, col: number) => c.get(P.dst).get(row).get(P.ds).mul().get(col).add().i32(2).shl().add()
    const copyOne = (srcRow: number, srcCol: number) => {
      dstAt(srcCol, srcRow)
      srcAt(srcRow, srcCol).f32Load()
      c.f32Store()
    }
    c.get(P.ss).i32(2).shl().set(ss4)
    c.get(P.ds).i32(2).shl().set(ds4)
    c.i32(0).set(i)
    // Bands of 4 source rows.
    c.loop(() => {
      c.get(i).i32(4).add().get(P.rows).gtS().breakIf()
      c.i32(0).set(j)
      c.loop(() => {
        c.get(j).i32(4).add().get(P.cols).gtS().breakIf()
        srcAt(i, j).set(s)
        dstAt(j, i).set(d)
        // rows a, b, c, d of the block -> t0 = a0 b0 a1 b1, t1 = a2 b2 a3 b3, t2 = c0 d0 c1 d1, t3 = c2 d2 c3 d3
        c.get(s).v128Load().get(s).get(ss4).add().v128Load().shuffle32(0, 4, 1, 5).set(t0)
        c.get(s).v128Load().get(s).get(ss4).add().v128Load().shuffle32(2, 6, 3, 7).set(t1)
        c.get(s).get(ss4).i32(2).mul().add().set(s)
        c.get(s).v128Load().get(s).get(ss4).add().v128Load().shuffle32(0, 4, 1, 5).set(t2)
        c.get(s).v128Load().get(s).get(ss4).add().v128Load().shuffle32(2, 6, 3, 7).set(t3)
        // columns: a0 b0 c0 d0, a1 b1 c1 d1, a2 b2 c2 d2, a3 b3 c3 d3
        c.get(d).get(t0).get(t2).shuffle32(0, 1, 4, 5).v128Store()
        c.get(d).get(ds4).add().set(d)
        c.get(d).get(t0).get(t2).shuffle32(2, 3, 6, 7).v128Store()
        c.get(d).get(ds4).add().set(d)
        c.get(d).get(t1).get(t3).shuffle32(0, 1, 4, 5).v128Store()
        c.get(d).get(ds4).add().set(d)
        c.get(d).get(t1).get(t3).shuffle32(2, 3, 6, 7).v128Store()
        c.get(j).i32(4).add().set(j)
        c.i32(1).continueIf()
      })
      // Leftover columns of this band, one element at a time.
      c.loop(() => {
        c.get(j).get(P.cols).geS().breakIf()
        c.get(i).set(k)
        for (let r = 0; r < 4; r++) {
          copyOne(k, j)
          c.get(k).i32(1).add().set(k)
        }
        c.get(j).i32(1).add().set(j)
        c.i32(1).continueIf()
      })
      c.get(i).i32(4).add().set(i)
      c.i32(1).continueIf()
    })
    // Leftover rows.
    c.loop(() => {
      c.get(i).get(P.rows).geS().breakIf()
      c.i32(0).set(j)
      c.loop(() => {
        c.get(j).get(P.cols).geS().breakIf()
        copyOne(i, j)
        c.get(j).i32(1).add().set(j)
        c.i32(1).continueIf()
      })
      c.get(i).i32(1).add().set(i)
      c.i32(1).continueIf()
    })
  }
  return { name: 'transpose', params: new Array(6).fill(I32), locals: L.types, body }
}

function maxPoolGradBody() {
  const P = {
    x: 0,
    dy: 1,
    dx: 2,
    scratch: 3,
    n: 4,
    ih: 5,
    iw: 6,
    c: 7,
    oh: 8,
    ow: 9,
    sh: 10,
    sw: 11,
    fh: 12,
    fw: 13,
    pt: 14,
    pl: 15,
  }
  const L = locals(16, {
    b: I32,
    y: I32,
    xo: I32,
    y0: I32,
    x0: I32,
    y1: I32,
    x1: I32,
    yy: I32,
    xx: I32,
    g: I32,
    base: I32,
    idxAt: I32,
    o: I32,
    at: I32,
    bestV: V128,
    mask: V128,
    v: V128,
  })
  const l = L.index as Record<string, number>
  const body = (c: Code) => {
    const [b, y, xo, y0, x0, y1, x1, yy, xx, g, base, idxAt, o, at, bestV, mask, v] = [
      'b',
      'y',
      'xo',
      'y0',
      'x0',
      'y1',
      'x1',
      'yy',
      'xx',
      'g',
      'base',
      'idxAt',
      'o',
      'at',
      'bestV',
      'mask',
      'v',
    ].map((k) => l[k]!) as number[] as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ]
    /** for (i = from; i < to; i++) inner */
    const range = (i: number, from: () => void, to: () => void, inner: () => void) => {
      from()
      c.set(i)
      c.loop(() => {
        c.get(i)
        to()
        c.geS().breakIf()
        inner()
        c.get(i).i32(1).add().set(i)
        c.i32(1).continueIf()
      })
    }
    const at4 = (ptr: number, index: number) => c.get(ptr).get(index).i32(2).shl().add()
    // The i32 indices live after the c best values in the scratch.
    c.get(P.scratch).get(P.c).i32(2).shl().add().set(idxAt)
    range(
      b,
      () => c.i32(0),
      () => c.get(P.n),
      () => {
        range(
          y,
          () => c.i32(0),
          () => c.get(P.oh),
          () => {
            // window rows [max(0, y*sh - pt), min(ih, y*sh - pt + fh))
            c.get(y).get(P.sh).mul().get(P.pt).sub().set(y0)
            c.get(y0).get(P.fh).add().set(y1)
            c.get(y1).get(P.ih).get(y1).get(P.ih).ltS().select().set(y1)
            c.i32(0).get(y0).get(y0).i32(0).ltS().select().set(y0)
            range(
              xo,
              () => c.i32(0),
              () => c.get(P.ow),
              () => {
                c.get(xo).get(P.sw).mul().get(P.pl).sub().set(x0)
                c.get(x0).get(P.fw).add().set(x1)
                c.get(x1).get(P.iw).get(x1).get(P.iw).ltS().select().set(x1)
                c.i32(0).get(x0).get(x0).i32(0).ltS().select().set(x0)
                range(
                  g,
                  () => c.i32(0),
                  () => c.get(P.c),
                  () => {
                    at4(P.scratch, g).f32(-Infinity).f32Store()
                    at4(idxAt, g).i32(-1).i32Store()
                  }
                )
                range(
                  yy,
                  () => c.get(y0),
                  () => c.get(y1),
                  () => {
                    range(
                      xx,
                      () => c.get(x0),
                      () => c.get(x1),
                      () => {
                        // base = ((b*ih + yy)*iw + xx)*c, in floats
                        c.get(b).get(P.ih).mul().get(yy).add().get(P.iw).mul().get(xx).add().get(P.c).mul().set(base)
                        c.i32(0).set(g)
                        c.loop(() => {
                          c.get(g).get(P.c).geS().breakIf()
                          c.get(P.x).get(base).get(g).add().i32(2).shl().add().v128Load().set(v)
                          at4(P.scratch, g).v128Load().set(bestV)
                          c.get(v).get(bestV).f32x4Gt().set(mask)
                          at4(P.scratch, g).get(v).get(bestV).get(mask).bitselect().v128Store()
                          at4(idxAt, g)
                          c.get(base).get(g).add().i32x4Splat().i32x4Const(0, 1, 2, 3).i32x4Add()
                          at4(idxAt, g).v128Load()
                          c.get(mask).bitselect().v128Store()
                          c.get(g).i32(4).add().set(g)
                          c.i32(1).continueIf()
                        })
                      }
                    )
                  }
                )
                // scatter: dx[idx[ch]] += dy[o + ch]
                c.get(b).get(P.oh).mul().get(y).add().get(P.ow).mul().get(xo).add().get(P.c).mul().set(o)
                range(
                  g,
                  () => c.i32(0),
                  () => c.get(P.c),
                  () => {
                    at4(idxAt, g).i32Load().set(at)
                    c.get(at)
                      .i32(0)
                      .geS()
                      .ifThen(() => {
                        at4(P.dx, at)
                        at4(P.dx, at).f32Load()
                        c.get(P.dy).get(o).get(g).add().i32(2).shl().add().f32Load()
                        c.f32Add().f32Store()
                      })
                  }
                )
              }
            )
          }
        )
      }
    )
  }
  return { name: 'maxPoolGrad', params: new Array(16).fill(I32), locals: L.types, body }
}

/**
 * Per-channel sums for the BatchNorm gradient over `rows` rows of `c` channels (c a multiple of 4):
 * `scratch[0:c] = sum(dy)`, `scratch[c:2c] = sum(dy * (x - mean))`. Rows are summed in blocks of 16 into
 * `scratch[2c:4c]` first, so float32 error grows with 16 + rows/16 rather than with rows. With `fma` the
 * `dy * (x - mean)` accumulation is one `f32x4.relaxed_madd` (relaxed SIMD only).
 */
function bnGradSumsBody(fma: boolean) {
  const P = { dy: 0, x: 1, mean: 2, rows: 3, c: 4, scratch: 5 }
  const L = locals(6, { r: I32, g: I32, end: I32, block: I32, bytes: I32, row: I32, v: V128 })
  const l = L.index as Record<string, number>
  const body = (c: Code) => {
    const [r, g, end, block, bytes, row] = ['r', 'g', 'end', 'block', 'bytes', 'row'].map((k) => l[k]!) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ]
    const v = l['v']!
    const sum1 = () => c.get(P.scratch).get(g).add()
    const sum2 = () => c.get(P.scratch).get(bytes).add().get(g).add()
    const blk1 = () => c.get(P.scratch).get(bytes).i32(2).mul().add().get(g).add()
    const blk2 = () => c.get(P.scratch).get(bytes).i32(3).mul().add().get(g).add()
    c.get(P.c).i32(2).shl().set(bytes)
    // zero the totals
    c.i32(0).set(g)
    c.loop(() => {
      c.get(g).get(bytes).i32(1).shl().geS().breakIf()
      c.get(P.scratch).get(g).add().f32(0).f32x4Splat().v128Store()
      c.get(g).i32(16).add().set(g)
      c.i32(1).continueIf()
    })
    c.i32(0).set(r)
    c.loop(() => {
      c.get(r).get(P.rows).geS().breakIf()
      c.get(r).i32(16).add().set(end)
      c.get(end).get(P.rows).get(end).get(P.rows).ltS().select().set(end)
      // zero the block sums
      c.i32(0).set(g)
      c.loop(() => {
        c.get(g).get(bytes).geS().breakIf()
        blk1().f32(0).f32x4Splat().v128Store()
        blk2().f32(0).f32x4Splat().v128Store()
        c.get(g).i32(16).add().set(g)
        c.i32(1).continueIf()
      })
      c.get(r).set(block)
      c.loop(() => {
        c.get(block).get(end).geS().breakIf()
        c.get(block).get(bytes).mul().set(row)
        c.i32(0).set(g)
        c.loop(() => {
          c.get(g).get(bytes).geS().breakIf()
          c.get(P.dy).get(row).add().get(g).add().v128Load().set(v)
          blk1()
          blk1().v128Load().get(v).f32x4Add().v128Store()
          // block2 += (x - mean) * dy
          blk2()
          c.get(P.x).get(row).add().get(g).add().v128Load().get(P.mean).get(g).add().v128Load().f32x4Sub()
          c.get(v)
          if (fma) blk2().v128Load().f32x4RelaxedMadd().v128Store()
          else {
            c.f32x4Mul() // float addition commutes, so product + block is the same float as before
            blk2().v128Load().f32x4Add().v128Store()
          }
          c.get(g).i32(16).add().set(g)
          c.i32(1).continueIf()
        })
        c.get(block).i32(1).add().set(block)
        c.i32(1).continueIf()
      })
      // totals += block sums
      c.i32(0).set(g)
      c.loop(() => {
        c.get(g).get(bytes).geS().breakIf()
        sum1()
        sum1().v128Load()
        blk1().v128Load().f32x4Add().v128Store()
        sum2()
        sum2().v128Load()
        blk2().v128Load().f32x4Add().v128Store()
        c.get(g).i32(16).add().set(g)
        c.i32(1).continueIf()
      })
      c.get(end).set(r)
      c.i32(1).continueIf()
    })
  }
  return { name: 'bnGradSums', params: new Array(6).fill(I32), locals: L.types, body }
}

/**
 * `dx = dy * a + (x - mean) * b + k` per channel; `coef` holds mean, a, b, k (c floats each). With `fma` it
 * is `relaxed_madd(dy, a, relaxed_madd(x - mean, b, k))` (relaxed SIMD only).
 */
function bnGradApplyBody(fma: boolean) {
  const P = { dy: 0, x: 1, dx: 2, rows: 3, c: 4, coef: 5 }
  const L = locals(6, { r: I32, g: I32, bytes: I32, row: I32 })
  const l = L.index as Record<string, number>
  const body = (c: Code) => {
    const [r, g, bytes, row] = ['r', 'g', 'bytes', 'row'].map((k) => l[k]!) as [number, number, number, number]
    const coef = (k: number) => c.get(P.coef).get(bytes).i32(k).mul().add().get(g).add().v128Load()
    c.get(P.c).i32(2).shl().set(bytes)
    c.i32(0).set(r)
    c.loop(() => {
      c.get(r).get(P.rows).geS().breakIf()
      c.get(r).get(bytes).mul().set(row)
      c.i32(0).set(g)
      c.loop(() => {
        c.get(g).get(bytes).geS().breakIf()
        c.get(P.dx).get(row).add().get(g).add()
        c.get(P.dy).get(row).add().get(g).add().v128Load()
        coef(1)
        if (fma) {
          c.get(P.x).get(row).add().get(g).add().v128Load()
          coef(0).f32x4Sub()
          coef(2)
          coef(3).f32x4RelaxedMadd().f32x4RelaxedMadd().v128Store()
        } else {
          c.f32x4Mul()
          c.get(P.x).get(row).add().get(g).add().v128Load()
          coef(0).f32x4Sub()
          coef(2).f32x4Mul().f32x4Add()
          coef(3).f32x4Add().v128Store()
        }
        c.get(g).i32(16).add().set(g)
        c.i32(1).continueIf()
      })
      c.get(r).i32(1).add().set(r)
      c.i32(1).continueIf()
    })
  }
  return { name: 'bnGradApply', params: new Array(6).fill(I32), locals: L.types, body }
}

/** `rows` copies of `len` floats, from `src + r*srcStride` to `dst + r*dstStride` (strides in floats). */
function copyRowsBody() {
  const P = { src: 0, ss: 1, dst: 2, ds: 3, rows: 4, len: 5 }
  const L = locals(6, { r: I32, o: I32, end: I32, s: I32, d: I32 })
  const l = L.index as Record<string, number>
  const body = (c: Code) => {
    const [r, o, end, s, d] = ['r', 'o', 'end', 's', 'd'].map((k) => l[k]!) as [number, number, number, number, number]
    c.get(P.len).i32(~3).and().i32(2).shl().set(end)
    c.i32(0).set(r)
    c.get(P.src).set(s)
    c.get(P.dst).set(d)
    c.loop(() => {
      c.get(r).get(P.rows).geS().breakIf()
      c.i32(0).set(o)
      c.loop(() => {
        c.get(o).get(end).geS().breakIf()
        c.get(d).get(o).add().get(s).get(o).add().v128Load().v128Store()
        c.get(o).i32(16).add().set(o)
        c.i32(1).continueIf()
      })
      c.loop(() => {
        c.get(o).get(P.len).i32(2).shl().geS().breakIf()
        c.get(d).get(o).add().get(s).get(o).add().f32Load().f32Store()
        c.get(o).i32(4).add().set(o)
        c.i32(1).continueIf()
      })
      c.get(s).get(P.ss).i32(2).shl().add().set(s)
      c.get(d).get(P.ds).i32(2).shl().add().set(d)
      c.get(r).i32(1).add().set(r)
      c.i32(1).continueIf()
    })
  }
  return { name: 'copyRows', params: new Array(6).fill(I32), locals: L.types, body }
}

/** The parts of the WebAssembly API used here (this project's TypeScript libs do not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { exports: unknown }
}
/** A `WebAssembly.Memory`. */
export type WasmMemory = { readonly buffer: ArrayBuffer }

/** Instances per memory, one per module variant (FMA or not). */
const cache = new WeakMap<WasmMemory, { fma?: SimdKernels; plain?: SimdKernels }>()

// Feature probes (as in the wasm-feature-detect project): the smallest modules using one SIMD instruction.
// i32.const 0; i8x16.splat; i8x16.popcnt
const SIMD_PROBE = [
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]
// i32.const 1; i8x16.splat; i32.const 2; i8x16.splat; i8x16.relaxed_swizzle
const RELAXED_SIMD_PROBE = [
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15,
  253, 128, 2, 11,
]

function validates(bytes: readonly number[]): boolean {
  const api = (globalThis as unknown as { WebAssembly?: { validate(bytes: Uint8Array): boolean } }).WebAssembly
  try {
    return api?.validate(new Uint8Array(bytes)) ?? false
  } catch {
    return false
  }
}

/** A probe's answer, computed once: the runtime does not change, and kernels ask on every call. */
const probe = (bytes: readonly number[]) => {
  let answer: boolean | undefined
  return (): boolean => {
    answer ??= validates(bytes)
    return answer
  }
}
/** Whether this runtime's WebAssembly has 128-bit SIMD (Node 16.4+ does). */
export const runtimeHasSimd: () => boolean = probe(SIMD_PROBE)
/** Whether this runtime's WebAssembly has relaxed SIMD (fused multiply-add and friends; Node 22+ / V8 11.4+). */
export const runtimeHasRelaxedSimd: () => boolean = probe(RELAXED_SIMD_PROBE)

let enabled = true
let fmaEnabled = true

/**
 * Turns the SIMD kernels off (every caller then runs its JS loop) or back on. For tests of the JS fallbacks
 * and for diagnosing a suspected kernel bug; production code never calls it.
 */
export function setSimdKernelsEnabled(on: boolean): void {
  enabled = on
}

/** Why {@link simdKernels} returns null right now, or null when it returns kernels. */
export function simdKernelsOffReason(): string | null {
  if (!enabled) return 'turned off (setSimdKernelsEnabled(false))'
  if (!runtimeHasSimd()) return 'this runtime has no WebAssembly SIMD; JS loops are used'
  return null
}

/**
 * Makes the SIMD kernels use plain `f32x4.mul` + `f32x4.add` even where the runtime has relaxed SIMD (`false`),
 * or FMA again where it has (`true`, the default). For tests and for diagnosing a suspected FMA difference;
 * takes effect on the next kernel call. Production code never turns it off (the data-parallel step only copies
 * the main thread's switch to its workers).
 */
export function setSimdFmaEnabled(on: boolean): void {
  fmaEnabled = on
}

/** Both switches ({@link setSimdKernelsEnabled}, {@link setSimdFmaEnabled}), not what runs (see the off reasons). */
export interface SimdSwitches {
  readonly kernels: boolean
  readonly fma: boolean
}

/**
 * The switches as set on this thread. Module state is per thread: the data-parallel step reads them here and
 * sets them in each worker replica with {@link setSimdSwitches}.
 */
export function simdSwitches(): SimdSwitches {
  return { kernels: enabled, fma: fmaEnabled }
}

export function setSimdSwitches(switches: SimdSwitches): void {
  enabled = switches.kernels
  fmaEnabled = switches.fma
}

/** Why the SIMD kernels run without FMA right now, or null when they use `f32x4.relaxed_madd`. */
export function simdFmaOffReason(): string | null {
  const kernels = simdKernelsOffReason()
  if (kernels !== null) return `no SIMD kernels: ${kernels}`
  if (!fmaEnabled) return 'turned off (setSimdFmaEnabled(false)): plain f32x4 mul + add'
  if (!runtimeHasRelaxedSimd()) {
    return 'this runtime lacks relaxed SIMD (Node 22+ has it): plain f32x4 mul + add'
  }
  return null
}

/**
 * The module's bytes; exported so a test can validate them without a heap. `fma`: the variant whose BatchNorm
 * gradient kernels use `f32x4.relaxed_madd`, which validates only where the runtime has relaxed SIMD.
 * @param fma default: whether FMA is on now ({@link simdFmaOffReason} is null)
 */
export function simdKernelModule(fma = simdFmaOffReason() === null, sharedMemory = false): Uint8Array {
  return assemble(
    [
      adamBody(),
      transposeBody(),
      copyRowsBody(),
      maxPoolGradBody(),
      bnGradSumsBody(fma),
      bnGradApplyBody(fma),
      blendBody(),
    ],
    { sharedMemory }
  )
}

/**
 * The kernels instantiated over `memory` (once per memory and variant), or null where this runtime has no
 * wasm SIMD or they were turned off (the callers then use their JS loops). The variant uses FMA where the
 * runtime has relaxed SIMD, unless {@link setSimdFmaEnabled} turned it off.
 *
 * @throws when the runtime has SIMD but this module does not compile or instantiate: that is a bug here
 *   (a wrong opcode, a bad stack), not a property of the machine, and must not hide behind a 10x slower path.
 */
export function simdKernels(memory: WasmMemory): SimdKernels | null {
  if (simdKernelsOffReason() !== null) return null
  // simdFmaOffReason() without its repeat of the check above: this runs on every kernel call
  const fma = fmaEnabled && runtimeHasRelaxedSimd()
  const variant = fma ? 'fma' : 'plain'
  let instances = cache.get(memory)
  const known = instances?.[variant]
  if (known) return known
  let kernels: SimdKernels
  try {
    const api = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer
    kernels = new api.Instance(new api.Module(simdKernelModule(fma, shared)), { env: { memory } })
      .exports as SimdKernels
  } catch (error) {
    throw new Error(
      `the engine's SIMD kernel module is broken on a runtime that has SIMD${fma ? ' (FMA variant, relaxed SIMD)' : ''}: ${error instanceof Error ? error.message : String(error)}`
    )
  }
  if (!instances) {
    instances = {}
    cache.set(memory, instances)
  }
  instances[variant] = kernels
  return kernels
}
