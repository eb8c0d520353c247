/**
 * The training image (trainer/Dockerfile) installs the production dependencies only (`npm ci --omit=dev`) and
 * runs trainer/bin/job.ts. So everything job.ts imports must be a production dependency, and what only the local
 * system, the CLI or the tests use must be a devDependency, kept out of the image.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { packagesImportedBy } from '../support/imports.js'

const root = path.resolve(import.meta.dirname, '../..')
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<
  'dependencies' | 'devDependencies' | 'optionalDependencies',
  Record<string, string>
>
const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { dev?: boolean; devOptional?: boolean }>
}

/** Used by local/, cli/, functions/predict/server.ts or the tests; never by the training job. */
const LOCAL_ONLY = ['s3rver', '@hono/node-server', '@smithy/signature-v4'] as const

describe('the training image', () => {
  it('gets from its production install every package trainer/bin/job.ts imports, and nothing local-only', async () => {
    // GIVEN what the job's entry imports, transitively through core/ and trainer/
    const imported = await packagesImportedBy('trainer/bin/job.ts')
    // THEN the engine, the store and the dataset readers are there, the local system's servers are not
    expect(imported).toEqual(expect.arrayContaining(['@tensorflow/tfjs', '@aws-sdk/client-s3', 'sharp', 'yauzl']))
    for (const name of ['s3rver', '@hono/node-server', 'hono']) expect(imported).not.toContain(name)
    // AND each is a production dependency that `npm ci --omit=dev` installs
    for (const name of imported) {
      expect(pkg.dependencies[name] ?? pkg.optionalDependencies[name], `${name} in dependencies`).toBeDefined()
      expect(lock.packages[`node_modules/${name}`], `${name} in the lock file`).toBeDefined()
      expect(lock.packages[`node_modules/${name}`]!.dev, `${name} not dev-only in the lock file`).toBeUndefined()
    }
  })

  it('leaves the local-only packages out: devDependencies, flagged dev in the lock file', () => {
    for (const name of LOCAL_ONLY) {
      expect(pkg.dependencies[name], `${name} not a production dependency`).toBeUndefined()
      expect(pkg.devDependencies[name], `${name} a devDependency`).toBeDefined()
    }
    // @smithy/signature-v4 is also the AWS SDK's own dependency, so the image keeps it; the S3 emulator and
    // the local HTTP server are installed for development only
    expect(lock.packages['node_modules/s3rver']).toMatchObject({ dev: true })
    expect(lock.packages['node_modules/@hono/node-server']).toMatchObject({ dev: true })
  })

  it('installs with `npm ci --omit=dev` and runs job.ts with tsx', () => {
    const dockerfile = readFileSync(path.join(root, 'trainer/Dockerfile'), 'utf8')
    expect(dockerfile).toMatch(/npm ci --omit=dev /)
    expect(dockerfile).toMatch(/ENTRYPOINT \["tsx", "trainer\/bin\/job\.ts"\]/)
  })

  it('lets the replica threads import tsx: the global install is linked into node_modules', () => {
    // the worker entry loads the TypeScript replica through tsx's API, resolved from /app/node_modules
    const worker = readFileSync(path.join(root, 'trainer/replica-worker.mjs'), 'utf8')
    expect(worker).toMatch(/from 'tsx\/esm\/api'/)
    const dockerfile = readFileSync(path.join(root, 'trainer/Dockerfile'), 'utf8')
    expect(dockerfile).toMatch(/ln -s "\$\(npm root --global\)\/tsx" node_modules\/tsx/)
  })
})
