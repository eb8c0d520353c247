/**
 * The `node:util` shim for tfjs-node 4.22 on Node 23+ (tfjs#8609). tfjs-node itself cannot be installed in
 * this sandbox (its install downloads libtensorflow), so the shim is checked directly: after it runs, every
 * util member tfjs-node 4.22 calls is a function with the removed originals' semantics, on the object that
 * `require('util')` (what tfjs-node's CommonJS uses) returns. On Node ≤ 22 it must leave util untouched.
 */
import { createRequire } from 'node:module'
import { expect, it } from 'vitest'
import { installNodeUtilShim, TFJS_NODE_UTIL_CALLS } from '../../../core/engine/node-compat.js'

const require = createRequire(import.meta.url)
const major = Number(process.versions.node.split('.')[0])

it('defines exactly what is missing, with the semantics tfjs-node relies on', () => {
  const util = require('node:util') as Record<string, unknown>
  const missing = TFJS_NODE_UTIL_CALLS.filter((name) => typeof util[name] !== 'function')
  if (major >= 23) expect(missing).toContain('isNullOrUndefined')
  else expect(missing).toEqual([])
  const originals = Object.fromEntries(TFJS_NODE_UTIL_CALLS.map((name) => [name, util[name]]))
  expect(installNodeUtilShim()).toEqual(missing)
  expect(installNodeUtilShim()).toEqual([])
  for (const name of TFJS_NODE_UTIL_CALLS) {
    expect(typeof util[name], name).toBe('function')
    if (!missing.includes(name)) expect(util[name], `${name} kept`).toBe(originals[name])
  }
  const isNullOrUndefined = util['isNullOrUndefined'] as (v: unknown) => boolean
  expect([null, undefined, 0, '', false, NaN, {}].map(isNullOrUndefined)).toEqual([
    true,
    true,
    false,
    false,
    false,
    false,
    false,
  ])
  const isArray = util['isArray'] as (v: unknown) => boolean
  expect([[], new Array(2), { length: 0 }, 'ab', new Float32Array(1)].map(isArray)).toEqual([
    true,
    true,
    false,
    false,
    false,
  ])
})

it("names the same calls as tfjs-node 4.22's compiled source", () => {
  // What `grep -rho 'util_1\.[A-Za-z]*' dist --include=*.js` finds in @tensorflow/tfjs-node@4.22.0 outside
  // its *_test.js files (the npm tarball), without the class TestKernelBackend (a test-only import). If the
  // package is installed here, its files are read instead of this record.
  let found: string[] = ['isArray', 'isNullOrUndefined', 'promisify']
  try {
    const dist = require.resolve('@tensorflow/tfjs-node').replace(/index\.js$/, '')
    found = scan(dist)
  } catch {
    // not installed (the usual case here)
  }
  expect([...TFJS_NODE_UTIL_CALLS]).toEqual(found)
})

function scan(dir: string): string[] {
  const fs = require('node:fs') as typeof import('node:fs')
  const names = new Set<string>()
  for (const entry of fs.readdirSync(dir, { recursive: true }) as string[]) {
    if (!entry.endsWith('.js') || entry.endsWith('_test.js')) continue
    for (const m of fs.readFileSync(`${dir}/${entry}`, 'utf8').matchAll(/util_1\.([a-z][A-Za-z]*)/g)) names.add(m[1]!)
  }
  return [...names].sort()
}
