/**
 * The engine patches tfjs internals and reads the wasm heap, verified against one tfjs version. This file
 * fails on a tfjs version bump (re-verify every patch in core/engine, then move TESTED_TFJS_VERSION), and
 * separately on an engine whose SIMD module is broken where the runtime has SIMD, which must be an error.
 */
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { initEngine, TESTED_TFJS_VERSION } from '../../../core/engine/index.js'
import {
  runtimeHasSimd,
  setSimdKernelsEnabled,
  simdKernels,
  simdKernelsOffReason,
} from '../../../core/engine/simd/kernels.js'

const require = createRequire(import.meta.url)
const root = path.resolve(import.meta.dirname, '../../..')
/** This project's TypeScript libs do not declare WebAssembly's JS API. */
const { Memory } = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBuffer } }
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
    // A memory the module cannot link to (shared, where it imports a plain one) stands for any defect of the
    // module on a runtime that has SIMD: it throws instead of falling back to the JS loops.
    const shared = new Memory({ initial: 1, maximum: 16, shared: true })
    expect(() => simdKernels(shared)).toThrow(/SIMD kernel module is broken on a runtime that has SIMD/)
  })
})
