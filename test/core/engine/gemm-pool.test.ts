/**
 * The GEMM's worker pool (core/engine/gemm-pool.ts) on a shared memory of its own: split over threads it writes
 * exactly what one thread writes, and a worker that cannot run is an error with its reason, never a hang or a
 * silently incomplete output.
 */
import { afterEach, expect, it } from 'vitest'
import { GemmPool } from '../../../core/engine/gemm-pool.js'
import { type GemmKernels, gemmModule, runGemm } from '../../../core/engine/simd/gemm.js'
import { runtimeHasRelaxedSimd } from '../../../core/engine/simd/kernels.js'

type MemoryApi = new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: ArrayBuffer }
type WasmApi = {
  Memory: MemoryApi
  Module: new (b: Uint8Array) => object
  Instance: new (m: object, i: object) => { exports: unknown }
}
const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly
const pools: GemmPool[] = []
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()))
})

it('reports a worker whose module does not instantiate, with the reason, instead of hanging', () => {
  const memory = new api.Memory({ initial: 1, maximum: 16, shared: true })
  const pool = new GemmPool(memory, 2, { moduleBytes: new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 99]) })
  pools.push(pool)
  const noop = () => {}
  const kernels: GemmKernels = { gemm4: noop, gemm3: noop, gemm2: noop, gemm1: noop }
  const call = {
    ...{ a: 0, aStep: 16, aBlock: 16 * 8, b: 0, bStep: 32, bPanel: 32, c: 4096, ldc: 32 },
    ...{ rows: 64, inner: 8, panels: 1, accumulate: false },
  }
  expect(() => pool.run(kernels, call)).toThrow(/the engine's GEMM worker 1 failed: .*(CompileError|section|magic)/i)
})

it('throws, instead of sleeping forever, when a worker never finishes its part (a worker that exited)', async () => {
  const memory = new api.Memory({ initial: 1, maximum: 16, shared: true })
  const pool = new GemmPool(memory, 2, { stallMs: 300 })
  await pool.close() // the worker is gone: nothing will ever count its part done
  const noop = () => {}
  const kernels: GemmKernels = { gemm4: noop, gemm3: noop, gemm2: noop, gemm1: noop }
  const call = {
    ...{ a: 0, aStep: 16, aBlock: 16 * 8, b: 0, bStep: 32, bPanel: 32, c: 4096, ldc: 32 },
    ...{ rows: 64, inner: 8, panels: 1, accumulate: false },
  }
  const started = performance.now()
  expect(() => pool.run(kernels, call)).toThrow(/GEMM workers stalled: 1 of 1 did not finish a call within 0.3 s/)
  expect(performance.now() - started).toBeGreaterThanOrEqual(300)
  // the pool stays failed: a later call throws at once rather than mixing with a part that may still land
  expect(() => pool.run(kernels, call)).toThrow(/stalled/)
})

it.skipIf(!runtimeHasRelaxedSimd())(
  'splits a GEMM over 3 threads and writes bit for bit what one thread writes (needs relaxed SIMD: Node 22+)',
  () => {
    const memory = new api.Memory({ initial: 64, maximum: 64, shared: true })
    const kernels = new api.Instance(new api.Module(gemmModule(true)), { env: { memory } }).exports as GemmKernels
    const f = new Float32Array(memory.buffer)
    const rows = 1_001 // 250 blocks of 4 and a partial one
    const inner = 37
    const cols = 24
    const aAt = 0
    const bAt = aAt + Math.ceil(rows / 4) * 16 * inner
    const oneAt = bAt + inner * cols * 4
    const manyAt = oneAt + rows * cols * 4
    let seed = 7
    for (let i = 0; i < manyAt / 4; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      f[i] = seed / 2 ** 32 - 0.5
    }
    const call = (c: number) => ({
      ...{ a: aAt, aStep: 16, aBlock: 16 * inner, b: bAt, bStep: cols * 4, bPanel: 32, c, ldc: cols * 4 },
      ...{ rows, inner, panels: cols / 8, accumulate: false },
    })
    runGemm(kernels, call(oneAt))
    const pool = new GemmPool(memory, 3)
    pools.push(pool)
    pool.run(kernels, call(manyAt))
    const one = f.slice(oneAt / 4, oneAt / 4 + rows * cols)
    const many = f.slice(manyAt / 4, manyAt / 4 + rows * cols)
    expect(one.some((v) => v !== 0)).toBe(true)
    expect(Buffer.from(many.buffer).equals(Buffer.from(one.buffer))).toBe(true)
    // one element by hand: row 1000 (the partial block), column 17
    let sum = 0
    for (let t = 0; t < inner; t++) sum += f[(aAt + 250 * 16 * inner + t * 16) / 4]! * f[(bAt + t * cols * 4) / 4 + 17]!
    expect(many[1000 * cols + 17]).toBeCloseTo(sum, 4)
  }
)
