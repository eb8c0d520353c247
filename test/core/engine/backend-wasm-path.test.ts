/** `wasmPath` points the wasm backend at a folder holding its binaries (as a Lambda bundle does). */
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { afterAll, expect, it, vi } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'

const require = createRequire(import.meta.url)
let folder: string | undefined

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

it('loads the wasm binaries from the folder it is given, not from the installed package', async () => {
  // Prepare: the binaries copied to a folder of their own, and a watch on the reads of the module loader
  const installed = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))
  folder = await mkdtemp(path.join(tmpdir(), 'agegender-wasm-'))
  const binaries = (await readdir(installed)).filter((f) => f.endsWith('.wasm'))
  expect(binaries.length).toBeGreaterThan(0)
  for (const f of binaries) await copyFile(path.join(installed, f), path.join(folder, f))
  const fs = require('node:fs') as typeof import('node:fs')
  const reads = vi.spyOn(fs, 'readFileSync')
  // Act
  const info = await initEngine({ backend: 'wasm', wasmPath: folder })
  // Assess: a binary was read from the given folder, none from the package's own, and the backend computes
  const paths = reads.mock.calls.map(([p]) => String(p))
  reads.mockRestore()
  expect(paths.some((p) => p.startsWith(folder!) && p.endsWith('.wasm'))).toBe(true)
  expect(paths.some((p) => p.startsWith(installed) && p.endsWith('.wasm'))).toBe(false)
  expect(info.name).toBe('wasm')
  expect(tf.tidy(() => Array.from(tf.add(tf.tensor1d([1, 2]), 1).dataSync()))).toEqual([2, 3])
})
