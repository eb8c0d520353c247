/**
 * XNNPACK's thread pool under Node (core/engine/wasm-threads.ts): the threaded build starts with the pool asked
 * for, training on it gives bit-identical weights to one thread, the process still ends by itself, and a pool
 * other than the one asked for is reported, not hidden. Each engine runs in its own process
 * (support/train-steps-digest.ts), since the engine is process-wide.
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { expect, it } from 'vitest'
import { threadsFeature } from '../../../core/engine/backend.js'
import { runtimeHasRelaxedSimd } from '../../../core/engine/simd/kernels.js'

const root = path.resolve(import.meta.dirname, '../../..')

interface Digest {
  description: string
  threads: { on: boolean; detail: string }
  gemm: { on: boolean; detail: string }
  losses: number[]
  digest: string
}

function trainSteps(threads: number, env: Record<string, string> = {}): Digest {
  const run = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules/tsx/dist/cli.mjs'), 'support/train-steps-digest.ts', '--threads', String(threads)],
    { cwd: root, encoding: 'utf8', timeout: 180_000, env: { ...process.env, ...env } }
  )
  // a pool that kept the process alive would end in the timeout's signal, not status 0
  expect(run.signal, 'the process did not end by itself').toBeNull()
  expect(run.status, run.stderr).toBe(0)
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as Digest
}

it('trains on two threads (XNNPACK, and our GEMM where the runtime has relaxed SIMD) to the same weights, bit for bit, as on one', () => {
  const one = trainSteps(1)
  const two = trainSteps(2)
  expect(one.description).toContain('1 thread,')
  expect(one.threads).toEqual({ on: false, detail: '1 thread asked for (--threads / AGEGENDER_THREADS)' })
  expect(two.description).toContain('2 threads,')
  expect(two.threads).toEqual({ on: true, detail: "2 threads (the calling one included) run XNNPACK's operators" })
  if (runtimeHasRelaxedSimd()) {
    // By default one thread convolves on our GEMM and two on XNNPACK's threads; AGEGENDER_GEMM=on puts two on the
    // GEMM (split over its own workers on the shared heap), =off puts one on XNNPACK. Each engine gives the same
    // weights on one thread as on two.
    expect(one.gemm).toEqual({ on: true, detail: expect.stringContaining(' bytes, 1 thread)') })
    expect(two.gemm).toEqual({ on: false, detail: expect.stringMatching(/opt-in \(AGEGENDER_GEMM=on\)/) })
    const pooled = trainSteps(2, { AGEGENDER_GEMM: 'on' })
    expect(pooled.gemm).toEqual({ on: true, detail: expect.stringContaining(' bytes, 2 threads)') })
    expect(pooled.digest).toBe(one.digest)
    const oneXnnpack = trainSteps(1, { AGEGENDER_GEMM: 'off' })
    expect(oneXnnpack.gemm).toEqual({ on: false, detail: expect.stringMatching(/AGEGENDER_GEMM=off/) })
    expect(two.losses.every(Number.isFinite)).toBe(true)
    expect(two.losses).toEqual(oneXnnpack.losses)
    expect(two.digest).toBe(oneXnnpack.digest)
    return
  }
  expect(two.losses).toHaveLength(3)
  expect(two.losses.every(Number.isFinite)).toBe(true)
  expect(two.losses).toEqual(one.losses)
  expect(two.digest).toBe(one.digest)
})

it('reports a pool other than the one asked for, and a threaded build that failed, with the reason', () => {
  expect(threadsFeature(4, 4)).toEqual({
    on: true,
    detail: "4 threads (the calling one included) run XNNPACK's operators",
  })
  expect(threadsFeature(4, 2)).toEqual({ on: false, detail: "4 threads asked for, XNNPACK's pool has 2" })
  expect(threadsFeature(2, 1, 'worker sent an error')).toEqual({
    on: false,
    detail: '2 threads asked for, the threaded build failed to start (worker sent an error): 1 thread',
  })
})
