import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { packageClosure } from '../../infra/package-closure.js'
import { repoRoot } from '../../infra/paths.js'

let root: string
const pkg = (dir: string, dependencies: Record<string, string> = {}) => {
  mkdirSync(`${root}/${dir}`, { recursive: true })
  writeFileSync(`${root}/${dir}/package.json`, JSON.stringify({ dependencies }))
}

beforeEach(() => {
  root = mkdtempSync(`${tmpdir()}/closure-`)
})
afterEach(() => rmSync(root, { recursive: true, force: true }))

describe('packageClosure', () => {
  it('follows dependencies transitively, hoisted ones listed, nested ones left to their parent', () => {
    // GIVEN native → a → b (hoisted), and native's own nested copy of c
    pkg('node_modules/native', { a: '^1', c: '^1' })
    pkg('node_modules/native/node_modules/c')
    pkg('node_modules/a', { b: '^1' })
    pkg('node_modules/@scope/b')
    pkg('node_modules/b')
    // WHEN  THEN
    expect(packageClosure(root, ['native'])).toEqual(['node_modules/a', 'node_modules/b', 'node_modules/native'])
  })

  it('fails naming a missing package and who needs it', () => {
    // GIVEN a dependency that is not installed  THEN the error names both
    pkg('node_modules/native', { gone: '^1' })
    expect(() => packageClosure(root, ['native'])).toThrow(/'gone' \(needed by node_modules\/native\)/)
  })

  it("finds sharp's runtime packages in this repository", () => {
    // GIVEN the installed node_modules  THEN sharp, its linux-x64 binaries and its JS dependencies
    const closure = packageClosure(repoRoot, ['sharp', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64'])
    expect(closure).toEqual(
      expect.arrayContaining([
        'node_modules/sharp',
        'node_modules/@img/sharp-linux-x64',
        'node_modules/@img/sharp-libvips-linux-x64',
        'node_modules/detect-libc',
      ])
    )
  })
})
