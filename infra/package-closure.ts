/**
 * Which installed packages a native module needs at run time, for copying them next to a Lambda bundle
 * that marks the module external (esbuild cannot bundle sharp's `.node` binary and libvips).
 * @module
 */
import { existsSync, readFileSync } from 'node:fs'

interface PackageJson {
  readonly dependencies?: Record<string, string>
}

/**
 * `names` plus their transitive `dependencies`, as paths relative to `root` (`node_modules/sharp`, ...),
 * each resolved where Node would find it from the package that needs it: its own nested `node_modules`
 * first (copied along with the parent, so not listed), then the hoisted `root/node_modules`.
 * Optional dependencies are not followed: list the platform packages you need (`@img/sharp-linux-x64`).
 *
 * @throws if a package is not installed, naming it and who needs it.
 * @example packageClosure(repoRoot, ['sharp', '@img/sharp-linux-x64'])
 *   // ['node_modules/sharp', 'node_modules/@img/colour', 'node_modules/detect-libc', ...]
 */
export function packageClosure(root: string, names: readonly string[]): string[] {
  const found = new Set<string>()
  const visit = (name: string, from: string) => {
    const dir = `node_modules/${name}`
    if (existsSync(`${root}/${from}/${dir}/package.json`) && from !== '.') return // nested: copied with `from`
    if (found.has(dir)) return
    if (!existsSync(`${root}/${dir}/package.json`)) {
      const neededBy = from === '.' ? 'the bundle' : from
      throw new Error(`package '${name}' (needed by ${neededBy}) is not installed in ${root}`)
    }
    found.add(dir)
    const pkg = JSON.parse(readFileSync(`${root}/${dir}/package.json`, 'utf8')) as PackageJson
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir)
  }
  for (const name of names) visit(name, '.')
  return [...found].sort()
}
