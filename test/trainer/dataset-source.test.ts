import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename as baseName, join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DatasetError,
  kindFromMagic,
  kindFromName,
  readEntries,
  type DatasetSource,
  type EntrySkipReason,
  type ReadOptions,
} from '../../trainer/dataset-source.js'
import {
  corruptArchive,
  makeImages,
  tarBuffer,
  writeFolder,
  zipBuffer,
  type ArchiveFile,
} from '../../support/images.js'

/** Small enough that the 3 KB "big" file below is skipped, large enough for every 32 px image. */
const MAX = 2500

let dir: string
let files: ArchiveFile[]
let expected: Array<{ name: string; bytes: Buffer }>
const archives: Record<string, Buffer> = {}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataset-source-'))
  const images = await makeImages({ count: 6, size: 32, seed: 7 })
  const real: ArchiveFile[] = [
    { name: 'labels.csv', bytes: Buffer.from('filename,age,gender\n') },
    { name: 'README.txt', bytes: Buffer.from('hello') },
    ...images.slice(0, 2).map((im) => ({ name: im.name, bytes: im.bytes })),
    ...images.slice(2, 4).map((im) => ({ name: `UTKFace/${im.name}`, bytes: im.bytes })),
    ...images.slice(4).map((im) => ({ name: `UTKFace/deep/er/${im.name}`, bytes: im.bytes })),
  ]
  files = [
    { name: 'UTKFace/' },
    { name: 'UTKFace/deep/' },
    ...real,
    { name: 'UTKFace/big.jpg', bytes: Buffer.alloc(3000, 1) },
    { name: 'UTKFace/link.jpg', symlinkTo: images[0]!.name },
    { name: '__MACOSX/UTKFace/._x.jpg', bytes: Buffer.from('resource fork') },
    { name: 'UTKFace/._y.jpg', bytes: Buffer.from('resource fork') },
    { name: '.DS_Store', bytes: Buffer.from('finder') },
  ]
  expected = real.map((f) => ({ name: f.name, bytes: Buffer.from(f.bytes!) })).sort(byName)
  archives['data.zip'] = await zipBuffer(files)
  archives['data.tar'] = await tarBuffer(files)
  archives['data.tar.gz'] = await tarBuffer(files, { gzip: true })
  archives['data.tgz'] = archives['data.tar.gz']
  await writeFolder(files, join(dir, 'folder'))
  for (const [name, bytes] of Object.entries(archives)) await writeFile(join(dir, name), bytes)
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

async function readAll(source: DatasetSource, options: ReadOptions = {}) {
  const entries: Array<{ name: string; bytes: Buffer }> = []
  const skipped: Array<{ name: string; reason: EntrySkipReason }> = []
  const onSkip = (name: string, reason: EntrySkipReason) => skipped.push({ name, reason })
  for await (const e of readEntries(source, { maxEntryBytes: MAX, onSkip, ...options })) entries.push(e)
  return { entries: entries.sort(byName), skipped: skipped.sort(byName) }
}

/** A stream in small uneven chunks, so kind detection must gather its 512 bytes across several. */
function chunked(bytes: Buffer): Readable {
  const parts: Buffer[] = []
  for (let i = 0; i < bytes.length; i += 97) parts.push(bytes.subarray(i, i + 97))
  return Readable.from(parts)
}

const SKIPPED = [
  { name: 'UTKFace/big.jpg', reason: 'too-large' },
  { name: 'UTKFace/link.jpg', reason: 'not-a-file' },
]

describe('readEntries', () => {
  it('reads a folder recursively: regular files only, junk passed over, big files and broken links reported', async () => {
    const { entries, skipped } = await readAll({ path: join(dir, 'folder') })
    expect(entries).toEqual(expected)
    // link.jpg points at UTKFace/<name>, which does not exist: a broken link (archives keep it as a link entry)
    expect(skipped).toEqual([SKIPPED[0], { name: 'UTKFace/link.jpg', reason: 'broken-link' }])
  })

  it('follows a folder made of symlinks, to files and to folders, once each, and reports a broken link', async () => {
    const subset = join(dir, 'subset')
    await mkdir(join(subset, 'more'), { recursive: true })
    const originals = expected.filter((f) => f.name.startsWith('UTKFace/') && !f.name.includes('/deep/'))
    for (const f of originals) await symlink(join(dir, 'folder', f.name), join(subset, baseName(f.name)))
    await symlink(join(dir, 'folder', 'UTKFace', 'deep'), join(subset, 'more', 'deep'))
    await symlink(subset, join(subset, 'more', 'loop')) // a cycle: read once
    await symlink(join(dir, 'gone.jpg'), join(subset, 'gone.jpg'))
    const { entries, skipped } = await readAll({ path: subset })
    const want = [
      ...originals.map((f) => ({ name: baseName(f.name), bytes: f.bytes })),
      ...expected
        .filter((f) => f.name.includes('/deep/'))
        .map((f) => ({ name: `more/deep/${f.name.slice('UTKFace/deep/'.length)}`, bytes: f.bytes })),
    ].sort(byName)
    expect(entries).toEqual(want)
    expect(skipped).toEqual([{ name: 'gone.jpg', reason: 'broken-link' }])
  })

  for (const name of ['data.zip', 'data.tar', 'data.tar.gz', 'data.tgz']) {
    it(`reads the same entries from ${name} by path, by file stream and by chunked stream`, async () => {
      const byPath = await readAll({ path: join(dir, name) })
      expect(byPath.entries).toEqual(expected)
      expect(byPath.skipped).toEqual(SKIPPED)
      const byStream = await readAll({ stream: createReadStream(join(dir, name)), name })
      expect(byStream).toEqual(byPath)
      const byChunks = await readAll({ stream: chunked(archives[name]!), name: `s3/key/${name}` })
      expect(byChunks).toEqual(byPath)
    })
  }

  it('detects the kind from magic bytes when the name says nothing or the wrong thing', async () => {
    expect(kindFromMagic(archives['data.zip']!)).toBe('zip')
    expect(kindFromMagic(archives['data.tar']!)).toBe('tar')
    expect(kindFromMagic(archives['data.tar.gz']!)).toBe('tar.gz')
    expect(kindFromName('A.TGZ')).toBe('tar.gz')
    expect(kindFromName('upload')).toBeUndefined()
    for (const [name, bytes] of [
      ['upload', archives['data.zip']!],
      ['upload.zip', archives['data.tar.gz']!],
      ['upload.tar.gz', archives['data.tar']!],
    ] as const) {
      expect((await readAll({ stream: Readable.from([bytes]), name })).entries, name).toEqual(expected)
    }
  })

  it('reports progress up to the total for a path and for a stream with a size', async () => {
    for (const source of [
      { path: join(dir, 'data.tar.gz') },
      { path: join(dir, 'data.zip') },
      { stream: Readable.from([archives['data.zip']!]), name: 'x.zip', size: archives['data.zip']!.length },
    ]) {
      const calls: Array<[number, number | undefined]> = []
      await readAll(source, { onProgress: (read, total) => calls.push([read, total]) })
      expect(calls.length).toBeGreaterThan(0)
      const [read, total] = calls.at(-1)!
      expect(total).toBeGreaterThan(0)
      expect(read).toBeLessThanOrEqual(total!)
      expect(read).toBeGreaterThan(total! * 0.9)
    }
  })

  it('stops cleanly when the reader breaks off early', async () => {
    for (const name of ['data.tar.gz', 'data.zip']) {
      let n = 0
      for await (const _ of readEntries({ stream: chunked(archives[name]!), name })) if (++n === 2) break
      expect(n).toBe(2)
    }
  })

  describe('errors', () => {
    for (const kind of ['zip', 'tar', 'tar.gz'] as const) {
      it(`a corrupt ${kind} gives a DatasetError with the cause, by path and by stream`, async () => {
        const bytes = await corruptArchive(kind)
        const path = join(dir, `corrupt.${kind}`)
        await writeFile(path, bytes)
        for (const source of [{ path }, { stream: Readable.from([bytes]), name: `corrupt.${kind}` }]) {
          const error = await readAll(source).then(
            () => undefined,
            (e: unknown) => e
          )
          expect(error).toBeInstanceOf(DatasetError)
          expect(error).toMatchObject({ name: 'DatasetError', code: 'corrupt-archive' })
          expect((error as DatasetError).message).toContain(`corrupt.${kind}`)
          expect((error as DatasetError).cause).toBeInstanceOf(Error)
        }
      })
    }

    it('an unknown format or a missing path gives a DatasetError', async () => {
      await expect(
        readAll({ stream: Readable.from([Buffer.from('just text, no archive')]), name: 'x.bin' })
      ).rejects.toMatchObject({ name: 'DatasetError', code: 'unknown-format' })
      await writeFile(join(dir, 'notes.txt'), 'text')
      await expect(readAll({ path: join(dir, 'notes.txt') })).rejects.toMatchObject({ code: 'unknown-format' })
      await expect(readAll({ path: join(dir, 'missing.zip') })).rejects.toMatchObject({ code: 'not-found' })
    })

    it('a stream that fails midway gives read-failed, whatever the kind', async () => {
      for (const name of ['data.zip', 'data.tar', 'data.tar.gz']) {
        for (const at of [100, 3000]) {
          const bytes = archives[name]!
          const stream = new Readable({
            read() {
              this.push(bytes.subarray(0, at))
              this.destroy(new Error('socket hang up'))
            },
          })
          const error = await readAll({ stream, name }).then(
            () => undefined,
            (e: unknown) => e
          )
          expect(error, `${name} at ${at}`).toMatchObject({ name: 'DatasetError', code: 'read-failed' })
          expect((error as Error).message).toContain('socket hang up')
        }
      }
    })

    it('an empty stream named .tar.gz is a corrupt archive, not a hang', async () => {
      await expect(readAll({ stream: Readable.from([]), name: 'empty.tar.gz' })).rejects.toMatchObject({
        code: 'corrupt-archive',
      })
    })
  })
})
