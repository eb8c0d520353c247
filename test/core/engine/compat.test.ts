/**
 * The engine patches tfjs internals and reads the wasm heap, verified against one tfjs version. This file
 * fails on a tfjs version bump (re-verify every patch in core/engine, then move TESTED_TFJS_VERSION), and
 * separately on an engine whose SIMD module is broken where the runtime has SIMD, which must be an error.
 * The module's two variants (FMA where the runtime has relaxed SIMD, plain mul + add) are held to a JS
 * reference here, on their own memory; the FMA cases are skipped, saying so, on a runtime without relaxed SIMD.
 */
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { initEngine, TESTED_TFJS_VERSION } from '../../../core/engine/index.js'
import {
  runtimeHasRelaxedSimd,
  runtimeHasSimd,
  type SimdKernels,
  setSimdFmaEnabled,
  setSimdKernelsEnabled,
  simdFmaOffReason,
  simdKernelModule,
  simdKernels,
  simdKernelsOffReason,
} from '../../../core/engine/simd/kernels.js'

const require = createRequire(import.meta.url)
const root = path.resolve(import.meta.dirname, '../../..')
/** This project's TypeScript libs do not declare WebAssembly's JS API. */
const { Memory, Module, Instance, validate } = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBuffer }
      Module: new (bytes: Uint8Array) => object
      Instance: new (module: object, imports: object) => { exports: unknown }
      validate(bytes: Uint8Array): boolean
    }
  }
).WebAssembly
const TFJS_PACKAGES = ['tfjs', 'tfjs-core', 'tfjs-layers', 'tfjs-backend-cpu', 'tfjs-backend-wasm']

describe('tfjs version', () => {
  it('is pinned exactly in package.json', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string>
    >
    const specs = { ...pkg['dependencies'], ...pkg['optionalDependencies'] }
    for (const name of ['tfjs', 'tfjs-backend-wasm', 'tfjs-node', 'tfjs-node-gpu']) {
      expect(specs[`@tensorflow/${name}`], name).toBe(TESTED_TFJS_VERSION)
    }
  })

  it('installed is the one the engine was verified against', () => {
    for (const name of TFJS_PACKAGES) {
      const { version } = require(`@tensorflow/${name}/package.json`) as { version: string }
      expect(version, `@tensorflow/${name}: re-verify core/engine against it, then update TESTED_TFJS_VERSION`).toBe(
        TESTED_TFJS_VERSION
      )
    }
  })

  it('holds every patch and heap access on this tfjs', async () => {
    const { report } = await initEngine({ backend: 'wasm' })
    expect(report.tfjs['tfjs-backend-wasm']).toBe(TESTED_TFJS_VERSION)
    for (const name of [
      'tfjs-version',
      'training-kernels',
      'simd-kernels',
      'lazy-conv-gradients',
      'fused-batch-norm',
      'fused-adam',
    ]) {
      expect(report.features[name], name).toMatchObject({ on: true })
    }
    expect(report.features['simd-fma']).toEqual(
      runtimeHasRelaxedSimd()
        ? { on: true, detail: 'runtime has relaxed SIMD: f32x4.relaxed_madd in BatchNorm gradient kernels' }
        : { on: false, detail: expect.stringMatching(/runtime lacks relaxed SIMD/) }
    )
    expect(report.features['gemm-conv']).toEqual(
      runtimeHasRelaxedSimd()
        ? { on: true, detail: expect.stringMatching(/^Conv2D, Conv2DBackpropFilter .* GEMM/) }
        : { on: false, detail: expect.stringMatching(/^XNNPACK's convolutions .*runtime lacks relaxed SIMD/) }
    )
  })
})

describe('SIMD kernel module', () => {
  it('tells "no SIMD" (off, with a reason) from "broken" (an error)', () => {
    expect(runtimeHasSimd()).toBe(true) // every Node this project supports has wasm SIMD
    expect(simdKernelsOffReason()).toBeNull()
    setSimdKernelsEnabled(false)
    try {
      expect(simdKernelsOffReason()).toMatch(/turned off/)
      expect(simdKernels(new Memory({ initial: 1 }))).toBeNull()
    } finally {
      setSimdKernelsEnabled(true)
    }
    expect(simdKernels(new Memory({ initial: 1 }))).not.toBeNull()
    // the threaded build's heap is a shared memory: the module then declares its import shared
    expect(simdKernels(new Memory({ initial: 1, maximum: 16, shared: true }))).not.toBeNull()
    // A memory the module cannot link to (an ArrayBuffer posing as one) stands for any defect of the module on a
    // runtime that has SIMD: it throws instead of falling back to the JS loops.
    const fake = { buffer: new ArrayBuffer(65536) }
    expect(() => simdKernels(fake)).toThrow(/SIMD kernel module is broken on a runtime that has SIMD/)
  })
})

const NO_RELAXED = 'this runtime lacks relaxed SIMD (Node 22+ has it): the FMA variant cannot run here'

describe('SIMD kernel module variants (FMA, plain mul + add)', () => {
  it('builds the FMA variant exactly where the runtime has relaxed SIMD; the plain one everywhere', () => {
    expect(validate(simdKernelModule(false))).toBe(true)
    // Also where relaxed SIMD is missing: the probe and the opcode must agree, or FMA would throw at start.
    expect(validate(simdKernelModule(true))).toBe(runtimeHasRelaxedSimd())
    expect(simdKernelModule(true)).not.toEqual(simdKernelModule(false))
  })

  it('picks the variant the switch and the runtime allow, and says why FMA is off', (ctx) => {
    const memory = new Memory({ initial: 1 })
    setSimdFmaEnabled(false)
    try {
      expect(simdFmaOffReason()).toBe('turned off (setSimdFmaEnabled(false)): plain f32x4 mul + add')
      expect(simdKernels(memory)).not.toBeNull()
      setSimdKernelsEnabled(false)
      expect(simdFmaOffReason()).toMatch(/^no SIMD kernels: turned off/)
    } finally {
      setSimdKernelsEnabled(true)
      setSimdFmaEnabled(true)
    }
    const plain = (() => {
      setSimdFmaEnabled(false)
      try {
        return simdKernels(memory)
      } finally {
        setSimdFmaEnabled(true)
      }
    })()
    if (!runtimeHasRelaxedSimd()) {
      expect(simdFmaOffReason()).toBe('this runtime lacks relaxed SIMD (Node 22+ has it): plain f32x4 mul + add')
      expect(simdKernels(memory)).toBe(plain)
      ctx.skip(NO_RELAXED)
    }
    expect(simdFmaOffReason()).toBeNull()
    const fma = simdKernels(memory)
    expect(fma).not.toBe(plain)
    expect(simdKernels(memory)).toBe(fma) // one instance per memory and variant
  })

  /** Deterministic values in [lo, hi). */
  function random(size: number, seed: number, lo = -1, hi = 1): Float32Array {
    let s = seed * 2654435761 + 1
    const out = new Float32Array(size)
    for (let i = 0; i < size; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0
      out[i] = lo + (s / 2 ** 32) * (hi - lo)
    }
    return out
  }

  function expectClose(actual: Float32Array, expected: Float64Array, what: string): void {
    let scale = 0
    for (const v of expected) scale = Math.max(scale, Math.abs(v))
    for (let i = 0; i < expected.length; i++) {
      // float32 rounding of a few terms, relative to the largest value
      expect(Math.abs(actual[i]! - expected[i]!), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`).toBeLessThan(
        2e-6 * scale
      )
    }
  }

  describe.each([
    ['FMA', true],
    ['plain mul + add', false],
  ] as const)('%s BatchNorm gradient kernels against the JS loop', (_, fma) => {
    // 37 rows: two full blocks of 16 and a partial one; 12 channels: three lane groups.
    const rows = 37
    const c = 12
    const dy = random(rows * c, 1)
    const x = random(rows * c, 2, -3, 5)
    const mean = random(c, 3, 0, 1)
    const coef = Float32Array.from([...mean, ...random(c, 4), ...random(c, 5), ...random(c, 6)])
    /** The kernels over a fresh memory holding dy, x, mean and coef; returns them and the heap's layout. */
    function setUp(ctx: { skip(condition: boolean, note?: string): void }) {
      ctx.skip(fma && !runtimeHasRelaxedSimd(), NO_RELAXED)
      const memory = new Memory({ initial: 1 })
      const kernels = new Instance(new Module(simdKernelModule(fma)), { env: { memory } }).exports as SimdKernels
      const heap = new Float32Array(memory.buffer)
      const at = { dy: 0, x: rows * c, mean: 2 * rows * c, coef: 2 * rows * c + c, out: 2 * rows * c + 5 * c }
      heap.set(dy, at.dy)
      heap.set(x, at.x)
      heap.set(mean, at.mean)
      heap.set(coef, at.coef)
      const bytes = Object.fromEntries(Object.entries(at).map(([k, v]) => [k, v * 4])) as typeof at
      return { kernels, heap, at, bytes }
    }

    it('bnGradSums: sum(dy) and sum(dy * (x - mean)) per channel', (ctx) => {
      const { kernels, heap, at, bytes } = setUp(ctx)
      kernels.bnGradSums(bytes.dy, bytes.x, bytes.mean, rows, c, bytes.out)
      const sumDy = new Float64Array(c)
      const sumDyXc = new Float64Array(c)
      for (let r = 0, o = 0; r < rows; r++, o += c) {
        for (let j = 0; j < c; j++) {
          sumDy[j]! += dy[o + j]!
          sumDyXc[j]! += dy[o + j]! * (x[o + j]! - mean[j]!)
        }
      }
      expectClose(heap.slice(at.out, at.out + c), sumDy, 'sum(dy)')
      expectClose(heap.slice(at.out + c, at.out + 2 * c), sumDyXc, 'sum(dy * (x - mean))')
    })

    it('bnGradApply: dy * a + (x - mean) * b + k', (ctx) => {
      const { kernels, heap, at, bytes } = setUp(ctx)
      kernels.bnGradApply(bytes.dy, bytes.x, bytes.out, rows, c, bytes.coef)
      const expected = new Float64Array(rows * c)
      for (let r = 0, o = 0; r < rows; r++, o += c) {
        for (let j = 0; j < c; j++) {
          expected[o + j] = dy[o + j]! * coef[c + j]! + (x[o + j]! - coef[j]!) * coef[2 * c + j]! + coef[3 * c + j]!
        }
      }
      expectClose(heap.slice(at.out, at.out + rows * c), expected, 'dx')
    })
  })
})
