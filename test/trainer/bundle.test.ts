/**
 * The engine bundled with esbuild (ES module, `mainFields: ['module', 'main']`, the banner the Lambda bundles
 * use: what a bundled trainer would run) gets the same kernels and patches as the tsx run. tfjs's ES module
 * build makes `tf.fused` a read-only namespace, which once silently turned a patch off in bundles only.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { build } from 'esbuild'
import { afterAll, expect, it } from 'vitest'
import { ESM_BANNER } from '../../infra/node-function.js'
import type { EngineReport } from '../../core/engine/index.js'
import { runtimeHasRelaxedSimd } from '../../core/engine/simd/kernels.js'

const root = path.resolve(import.meta.dirname, '../..')
const out = mkdtempSync(path.join(os.tmpdir(), 'engine-bundle-'))
afterAll(() => rmSync(out, { recursive: true, force: true }))

function report(command: string, args: string[]): EngineReport {
  const run = spawnSync(command, [...args, '--backend', 'wasm', '--json'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  })
  expect(run.status, run.stderr).toBe(0)
  return JSON.parse(run.stdout) as EngineReport
}

it('reports the same engine from an esbuild bundle as from tsx', async () => {
  const bundle = path.join(out, 'engine-report.mjs')
  await build({
    entryPoints: [path.join(root, 'trainer/bin/engine-report.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    banner: { js: ESM_BANNER },
    outfile: bundle,
    logLevel: 'silent',
  })
  // The bundle sits outside node_modules' reach, so it gets the wasm binaries' folder as a Lambda would.
  const wasmDir = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))
  const bundled = report(process.execPath, [bundle, '--wasm-path', wasmDir])
  const tsx = report(process.execPath, [
    path.join(root, 'node_modules/tsx/dist/cli.mjs'),
    'trainer/bin/engine-report.ts',
  ])
  expect(bundled.features).toEqual(tsx.features)
  // Off for a reason of the machine, not of the bundle: one core (no second thread to ask for), no relaxed SIMD
  // before Node 22. Both runs ask for the trainer's default threads, so on several cores the bundle must start
  // XNNPACK's pool too.
  const machineOff = new Set([
    ...(os.availableParallelism() > 1 ? [] : ['xnnpack-threads']),
    ...(runtimeHasRelaxedSimd() ? [] : ['simd-fma']),
    // the GEMM convolves where the engine has one thread (on several only with AGEGENDER_GEMM=on)
    ...(runtimeHasRelaxedSimd() && os.availableParallelism() === 1 ? [] : ['gemm-conv']),
  ])
  for (const [name, feature] of Object.entries(tsx.features)) {
    if (!machineOff.has(name)) expect(feature.on, `${name}: ${feature.detail}`).toBe(true)
  }
  expect(tsx.features['simd-fma']).toBeDefined()
})
