/**
 * Puts back the `node:util` functions that `@tensorflow/tfjs-node(-gpu)` 4.22 calls and that current Node
 * removed (tensorflow/tfjs#8609): Node 23 dropped `util.isNullOrUndefined`, so on Node 23+ tfjs-node imports
 * fine and then every op that passes through `nodejs_kernel_backend.js` or `kernels/TopK.js` throws
 * `(0, util_1.isNullOrUndefined) is not a function`.
 *
 * What 4.22's `dist/` (tests excluded) takes from `require("util")`, checked in its npm tarball:
 * `isNullOrUndefined` (nodejs_kernel_backend.js, kernels/TopK.js), `isArray` (nodejs_kernel_backend.js) and
 * `promisify` (saved_model.js, io/file_system.js). `promisify` is current API; `isArray` is deprecated and
 * still present on Node 24; `isNullOrUndefined` is gone. A function is defined only where it is missing, with
 * the semantics of the removed Node original, on the `util` module object itself (the one `require` returns).
 * @module
 */
import util from 'node:util'

/** The `node:util` members tfjs-node 4.22 calls; the compatibility test holds this to the package's source. */
export const TFJS_NODE_UTIL_CALLS = ['isArray', 'isNullOrUndefined', 'promisify'] as const

const REPLACEMENTS: Readonly<Record<string, (value: unknown) => boolean>> = {
  isNullOrUndefined: (value) => value === null || value === undefined,
  isArray: (value) => Array.isArray(value),
}

/**
 * Defines the missing members before tfjs-node loads. Idempotent.
 * @returns the names it defined (empty on Node ≤ 22, where nothing is missing)
 */
export function installNodeUtilShim(): string[] {
  const target = util as unknown as Record<string, unknown>
  const defined: string[] = []
  for (const [name, replacement] of Object.entries(REPLACEMENTS)) {
    if (typeof target[name] === 'function') continue
    Object.defineProperty(target, name, { value: replacement, writable: true, configurable: true, enumerable: false })
    defined.push(name)
  }
  return defined
}
