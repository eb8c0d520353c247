/**
 * The predict bundle gets sharp for linux-x64 on any host: copied where the host has those packages, installed
 * with npm's --os/--cpu/--libc otherwise. The "other host" is simulated by a clone of node_modules without the
 * linux-x64 packages.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { App, Stack, type CfnResource } from 'aws-cdk-lib'
import { Template } from 'aws-cdk-lib/assertions'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DatasetBucket } from '../../infra/dataset-bucket.js'
import { repoRoot } from '../../infra/paths.js'
import { PredictApi } from '../../infra/predict-api.js'
import { sharpBundleCommands, sharpSource } from '../../infra/sharp-bundle.js'

const LINUX_X64 = ['@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64']
let clone: string

/** A folder whose node_modules links every installed package except sharp's linux-x64 ones, as on a Mac. */
function cloneWithoutLinuxBinaries(): string {
  const root = mkdtempSync(`${tmpdir()}/no-linux-sharp-`)
  mkdirSync(`${root}/node_modules/@img`, { recursive: true })
  for (const entry of readdirSync(`${repoRoot}/node_modules`)) {
    if (entry === '@img' || entry === '.bin') continue
    symlinkSync(`${repoRoot}/node_modules/${entry}`, `${root}/node_modules/${entry}`)
  }
  for (const entry of readdirSync(`${repoRoot}/node_modules/@img`)) {
    if (LINUX_X64.includes(`@img/${entry}`)) continue
    symlinkSync(`${repoRoot}/node_modules/@img/${entry}`, `${root}/node_modules/@img/${entry}`)
  }
  return root
}

beforeAll(() => {
  clone = cloneWithoutLinuxBinaries()
})
afterAll(() => rmSync(clone, { recursive: true, force: true }))

/** cdk.json's feature flags, as the app runs with them. */
const flags = (JSON.parse(readFileSync(`${repoRoot}/cdk.json`, 'utf8')) as { context: Record<string, unknown> }).context

/** The sharp version the repository installed. */
const sharpVersion = () =>
  (JSON.parse(readFileSync(`${repoRoot}/node_modules/sharp/package.json`, 'utf8')) as { version: string }).version

describe('sharp for the predict bundle', () => {
  it.skipIf(!existsSync(`${repoRoot}/node_modules/@img/sharp-linux-x64`))(
    'copies the installed packages on a linux-x64 host',
    () => {
      const source = sharpSource(repoRoot)
      expect(source.kind).toBe('copy')
      const commands = sharpBundleCommands(source, '/in', '/out').join('\n')
      for (const name of ['sharp', ...LINUX_X64, 'detect-libc'])
        expect(commands).toContain(`cp -R "/in/node_modules/${name}" "/out/node_modules/${name}"`)
      expect(commands).not.toContain('npm install')
    }
  )

  it('installs the same sharp version for linux-x64 from npm where the host lacks those packages', () => {
    const source = sharpSource(clone)
    expect(source).toMatchObject({
      kind: 'npm',
      spec: `sharp@${sharpVersion()}`,
      why: expect.stringMatching(/not installed here/),
    })
    const [install, ...checks] = sharpBundleCommands(source, '/in', '/out')
    expect(install).toMatch(/^npm install --prefix "\/out" --os=linux --cpu=x64 --libc=glibc .* sharp@\d+\.\d+\.\d+$/)
    // the bundling fails loudly if the binaries did not arrive
    expect(checks).toEqual(LINUX_X64.map((n) => `test -f "/out/node_modules/${n}/package.json"`))
  })

  it('synthesizes the predict API in such a clone (it used to throw: not installed)', () => {
    const app = new App({ context: { ...flags, 'aws:cdk:bundling-stacks': [] } })
    const stack = new Stack(app, 'Clone')
    const api = new PredictApi(stack, 'Predict', { bucket: new DatasetBucket(stack, 'Data'), packagesRoot: clone })
    const id = stack.resolve((api.fn.node.defaultChild as CfnResource).logicalId) as string
    expect(Template.fromStack(stack).findResources('AWS::Lambda::Function')).toHaveProperty([id])
  })

  // Bundling in the clone runs the npm install against the registry: opt in where the network is there.
  it.skipIf(process.env.AGEGENDER_NETWORK_TESTS !== '1')(
    'bundles linux-x64 sharp from npm in the clone (AGEGENDER_NETWORK_TESTS=1)',
    () => {
      const app = new App({ context: flags })
      const stack = new Stack(app, 'CloneBundled')
      new PredictApi(stack, 'Predict', { bucket: new DatasetBucket(stack, 'Data'), packagesRoot: clone })
      const dir = app.synth().directory
      const assets = readdirSync(dir).filter((d) => d.startsWith('asset.') && existsSync(`${dir}/${d}/index.mjs`))
      expect(assets).toHaveLength(1)
      for (const name of ['sharp', ...LINUX_X64, 'detect-libc']) {
        expect(existsSync(`${dir}/${assets[0]}/node_modules/${name}/package.json`), name).toBe(true)
      }
    },
    600_000
  )
})
