/**
 * A float32 GEMM micro-kernel with fused multiply-adds (`f32x4.relaxed_madd`), for the convolutions' forward
 * pass and filter gradient where the runtime has relaxed SIMD (Node 22+). It computes
 *
 *     C[i][8p + j] (+)= sum over t < inner of A(i, t) * B[t*bStep + p*bPanel + j]      (j < 8)
 *
 * four rows of C by eight columns at a time: eight f32x4 accumulators, two loads of B and four broadcast
 * loads of A per step. A's layout is "four rows interleaved": row `i` of block `i/4` at byte
 * `a + (i/4)*aBlock + (i%4)*4 + t*aStep`. Two layouts the convolutions have fit that:
 *
 * - a packed operand `[blocks][inner][4]` (aStep 16, aBlock 16*inner), for the forward pass;
 * - a row-major matrix read transposed (`A(i, t) = M[t][i]`: aStep = 4*row length, aBlock 16), the im2col
 *   matrix in the filter gradient.
 *
 * B is read in place, a row of eight floats per step (the weights `[kh*kw*ci][co]`, or dy `[positions][co]`),
 * so the weights are never repacked. Each output element is one sum in the order t = 0, 1, ..., so results do
 * not depend on how rows or columns are split between threads.
 *
 * On one core of this project's development machine (Zen, wasm SIMD) it runs at 30-42 GFLOP/s where XNNPACK's
 * prebuilt wasm-simd GEMM (no FMA) runs at ~20. Without relaxed SIMD the module does not validate and
 * XNNPACK stays in charge (a mul + add version of this kernel measured slower than XNNPACK's).
 *
 * Exports `gemm4`, `gemm3`, `gemm2`, `gemm1`: the same loop for blocks of 4 rows, and for one last block of 3,
 * 2 or 1 rows. Parameters, all i32, strides in bytes:
 * `(a, aStep, aBlock, b, bStep, bPanel, c, ldc, rows, inner, panels, accumulate)`; `accumulate` non-zero adds
 * to C instead of overwriting it.
 * @module
 */
import { assemble, type Code, type FunctionDef, I32, V128 } from './assembler.js'
import { simdFmaOffReason, type WasmMemory } from './kernels.js'

const PARAMS = ['a', 'aStep', 'aBlock', 'b', 'bStep', 'bPanel', 'c', 'ldc', 'rows', 'inner', 'panels', 'accumulate']

function gemmBody(mr: number): FunctionDef {
  const P = Object.fromEntries(PARAMS.map((name, i) => [name, i])) as Record<string, number>
  const param = (name: string) => P[name]!
  let next = PARAMS.length
  // locals: row, panel and step counters, operand pointers, the current row of A and column panel of B
  const i = next++
  const p = next++
  const t = next++
  const aPtr = next++
  const bPtr = next++
  const cPtr = next++
  const aRow = next++
  const bCol = next++
  const b0 = next++
  const b1 = next++
  const s = next++
  const acc = Array.from({ length: 2 * mr }, () => next++)
  const body = (c: Code) => {
    const lo = (r: number) => acc[2 * r]!
    const hi = (r: number) => acc[2 * r + 1]!
    c.i32(0).set(i)
    c.get(param('a')).set(aRow)
    c.loop(() => {
      c.get(i).get(param('rows')).geS().breakIf()
      c.i32(0).set(p)
      c.get(param('b')).set(bCol)
      c.get(param('c')).get(i).get(param('ldc')).mul().add().set(cPtr)
      c.loop(() => {
        c.get(p).get(param('panels')).geS().breakIf()
        for (let r = 0; r < mr; r++) c.f32(0).f32x4Splat().tee(lo(r)).set(hi(r))
        c.get(param('accumulate')).ifThen(() => {
          for (let r = 0; r < mr; r++) {
            c.get(cPtr).get(param('ldc')).i32(r).mul().add().v128Load().set(lo(r))
            c.get(cPtr).get(param('ldc')).i32(r).mul().add().v128Load(16).set(hi(r))
          }
        })
        c.get(aRow).set(aPtr)
        c.get(bCol).set(bPtr)
        c.get(param('inner')).set(t)
        c.get(t).i32(0).gtS()
        c.ifThen(() => {
          c.loop(() => {
            c.get(bPtr).v128Load().set(b0)
            c.get(bPtr).v128Load(16).set(b1)
            for (let r = 0; r < mr; r++) {
              c.get(aPtr)
                .v128Load32Splat(4 * r)
                .set(s)
              c.get(s).get(b0).get(lo(r)).f32x4RelaxedMadd().set(lo(r))
              c.get(s).get(b1).get(hi(r)).f32x4RelaxedMadd().set(hi(r))
            }
            c.get(aPtr).get(param('aStep')).add().set(aPtr)
            c.get(bPtr).get(param('bStep')).add().set(bPtr)
            c.get(t).i32(1).sub().tee(t).continueIf()
          })
        })
        for (let r = 0; r < mr; r++) {
          c.get(cPtr).get(param('ldc')).i32(r).mul().add().get(lo(r)).v128Store()
          c.get(cPtr).get(param('ldc')).i32(r).mul().add().get(hi(r)).v128Store(16)
        }
        c.get(bCol).get(param('bPanel')).add().set(bCol)
        c.get(cPtr).i32(32).add().set(cPtr)
        c.get(p).i32(1).add().set(p)
        c.i32(1).continueIf()
      })
      c.get(aRow).get(param('aBlock')).add().set(aRow)
      c.get(i).i32(mr).add().set(i)
      c.i32(1).continueIf()
    })
  }
  return {
    name: `gemm${mr}`,
    params: PARAMS.map(() => I32),
    locals: [...new Array(8).fill(I32), ...new Array(3 + 2 * mr).fill(V128)],
    body,
  }
}

/** The module's bytes (validates only where the runtime has relaxed SIMD). */
export function gemmModule(sharedMemory = false): Uint8Array {
  return assemble([gemmBody(4), gemmBody(3), gemmBody(2), gemmBody(1)], { sharedMemory })
}

export type GemmFn = (
  a: number,
  aStep: number,
  aBlock: number,
  b: number,
  bStep: number,
  bPanel: number,
  c: number,
  ldc: number,
  rows: number,
  inner: number,
  panels: number,
  accumulate: number
) => void

export interface GemmKernels {
  gemm4: GemmFn
  gemm3: GemmFn
  gemm2: GemmFn
  gemm1: GemmFn
}

/** The operands of one GEMM call; strides in bytes, as in the module's header. */
export interface GemmCall {
  a: number
  aStep: number
  aBlock: number
  b: number
  bStep: number
  bPanel: number
  c: number
  ldc: number
  rows: number
  inner: number
  panels: number
  accumulate: boolean
}

/** Runs a GEMM of any row count: whole blocks of four, then the last partial block. */
export function runGemm(kernels: GemmKernels, g: GemmCall): void {
  const whole = g.rows & ~3
  const acc = g.accumulate ? 1 : 0
  if (whole > 0) {
    kernels.gemm4(g.a, g.aStep, g.aBlock, g.b, g.bStep, g.bPanel, g.c, g.ldc, whole, g.inner, g.panels, acc)
  }
  const rest = g.rows - whole
  if (rest === 0) return
  const fn = rest === 3 ? kernels.gemm3 : rest === 2 ? kernels.gemm2 : kernels.gemm1
  const blocks = whole / 4
  fn(
    g.a + blocks * g.aBlock,
    g.aStep,
    g.aBlock,
    g.b,
    g.bStep,
    g.bPanel,
    g.c + whole * g.ldc,
    g.ldc,
    rest,
    g.inner,
    g.panels,
    acc
  )
}

/** The parts of the WebAssembly API used here (this project's TypeScript libs do not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { exports: unknown }
}

const instances = new WeakMap<WasmMemory, GemmKernels>()

/** Why {@link gemmKernels} returns null right now, or null when it returns kernels. */
export function gemmOffReason(): string | null {
  const fma = simdFmaOffReason()
  return fma === null ? null : `XNNPACK's convolutions (our FMA GEMM needs relaxed SIMD: ${fma})`
}

/**
 * The GEMM kernels over `memory` (instantiated once per memory), or null where the SIMD kernels run without
 * FMA ({@link gemmOffReason} says why); callers then use XNNPACK.
 * @throws when the runtime has relaxed SIMD but the module does not compile: a bug here, not a machine property
 */
export function gemmKernels(memory: WasmMemory): GemmKernels | null {
  if (gemmOffReason() !== null) return null
  const known = instances.get(memory)
  if (known) return known
  let kernels: GemmKernels
  try {
    const api = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer
    kernels = new api.Instance(new api.Module(gemmModule(shared)), { env: { memory } }).exports as GemmKernels
  } catch (error) {
    throw new Error(
      `the engine's GEMM module is broken on a runtime with relaxed SIMD: ${error instanceof Error ? error.message : String(error)}`
    )
  }
  instances.set(memory, kernels)
  return kernels
}
