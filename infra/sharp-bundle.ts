/**
 * sharp for the predict bundle, whatever machine runs `cdk synth`: the Lambda runs linux-x64 with glibc,
 * while `npm ci` installs only the host's own sharp binary (darwin-arm64 on a Mac, win32-x64 on Windows...).
 * @module
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { packageClosure } from './package-closure.js'

/** The Lambda's platform, as npm's `--os/--cpu/--libc` name it. */
const TARGET = { os: 'linux', cpu: 'x64', libc: 'glibc' } as const
const NATIVE = ['@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64'] as const

interface SharpPackage {
  readonly version: string
  readonly optionalDependencies?: Record<string, string>
}

export type SharpSource =
  | { readonly kind: 'copy'; readonly packages: string[] }
  | { readonly kind: 'npm'; readonly spec: string; readonly why: string }

/**
 * Where the bundle's sharp comes from:
 * - `copy`: the linux-x64 packages sharp asks for are installed in `root` at the exact versions (a Linux x64
 *   host): they and their dependencies are copied, offline;
 * - `npm`: otherwise `npm install --os=linux --cpu=x64 --libc=glibc sharp@<the installed version>` into the
 *   bundle, which fetches the right binaries from the registry on any host.
 * @throws if sharp itself is not installed in `root` (run `npm ci`).
 */
export function sharpSource(root: string): SharpSource {
  const manifest = `${root}/node_modules/sharp/package.json`
  if (!existsSync(manifest)) throw new Error(`sharp is not installed in ${root}: run npm ci first`)
  const sharp = JSON.parse(readFileSync(manifest, 'utf8')) as SharpPackage
  const spec = `sharp@${sharp.version}`
  for (const name of NATIVE) {
    const wanted = sharp.optionalDependencies?.[name]
    const path = `${root}/node_modules/${name}/package.json`
    if (!wanted) return { kind: 'npm', spec, why: `sharp ${sharp.version} names no ${name}` }
    if (!existsSync(path)) return { kind: 'npm', spec, why: `${name} is not installed here (not a linux-x64 host)` }
    const installed = (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version
    if (installed !== wanted)
      return { kind: 'npm', spec, why: `${name} ${installed} is installed, sharp wants ${wanted}` }
  }
  return { kind: 'copy', packages: packageClosure(root, ['sharp', ...NATIVE]) }
}

/**
 * Shell commands (for `afterBundling`) that put sharp for linux-x64 under `<outputDir>/node_modules/`, and
 * fail the bundling if its binaries did not land there.
 */
export function sharpBundleCommands(source: SharpSource, inputDir: string, outputDir: string): string[] {
  const check = NATIVE.map((name) => `test -f "${outputDir}/node_modules/${name}/package.json"`)
  if (source.kind === 'copy') {
    return [
      ...source.packages.flatMap((dir) => [
        `mkdir -p "${outputDir}/${dirname(dir)}"`,
        `cp -R "${inputDir}/${dir}" "${outputDir}/${dir}"`,
      ]),
      ...check,
    ]
  }
  return [
    [
      'npm install',
      `--prefix "${outputDir}"`,
      `--os=${TARGET.os} --cpu=${TARGET.cpu} --libc=${TARGET.libc}`,
      '--no-save --no-package-lock --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error',
      source.spec,
    ].join(' '),
    ...check,
  ]
}
