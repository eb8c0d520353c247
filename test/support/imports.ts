/**
 * Which npm packages an entry point imports, transitively through our own modules, as esbuild resolves them
 * when bundling it: the packages a container or bundle that runs the entry must have installed.
 * @module
 */
import { isBuiltin } from 'node:module'
import path from 'node:path'
import { build } from 'esbuild'

const root = path.resolve(import.meta.dirname, '../..')

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
export const packageName = (specifier: string): string =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/')

/**
 * The packages `entry` (relative to the repository root) imports, statically or with a literal `import()`,
 * sorted; Node built-ins left out. Imports of a computed specifier (the engine's `import(specifier)` of
 * tfjs-node-gpu) are invisible here.
 */
export async function packagesImportedBy(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [path.join(root, entry)],
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    packages: 'external',
    metafile: true,
    write: false,
    logLevel: 'silent',
  })
  const names = new Set<string>()
  for (const input of Object.values(result.metafile.inputs)) {
    for (const imported of input.imports) {
      if (imported.external && !isBuiltin(imported.path)) names.add(packageName(imported.path))
    }
  }
  return [...names].sort()
}
