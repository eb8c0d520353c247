/**
 * Files from `../shared` (the data and fixtures beside the repository). Absent on a developer's machine → the
 * test is skipped with a message saying why; absent under `CI=true` → a failure, since CI always has them.
 * @module
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'

/** The repository's sibling `shared/` folder. */
export const SHARED_DIR = resolve(import.meta.dirname, '../../../shared')

/**
 * Whether `relative` (inside ../shared) exists; warns when it does not, and throws under CI.
 * @example const present = sharedPresent('fixtures/resnet18-torchvision/model.safetensors', 'torchvision parity')
 */
export function sharedPresent(relative: string, what: string): boolean {
  const path = resolve(SHARED_DIR, relative)
  if (existsSync(path)) return true
  if (process.env.CI === 'true') throw new Error(`${what}: ${path} is missing, and CI always has ../shared`)
  console.warn(`skipping ${what}: ${path} is absent (it ships in ../shared)`)
  return false
}
