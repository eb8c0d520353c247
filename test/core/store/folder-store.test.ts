/** FolderStore specifics: key validation, atomic writes, folder housekeeping. */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FolderStore, InvalidKeyError } from '../../../core/store/folder-store.js'

let root: string
let store: FolderStore

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'folder-store-'))
  store = new FolderStore(root)
})

afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

/** A stream that yields some bytes and then fails, like a dropped network download. */
const failingStream = () =>
  Readable.from(
    (async function* () {
      yield Buffer.from('partial')
      throw new Error('connection reset')
    })()
  )

describe('FolderStore', () => {
  it.each([
    ['../outside.txt', 'absolute path|".." segment'],
    ['runs/../../etc/passwd', '".." segment'],
    ['/etc/passwd', 'absolute path'],
    ['C:/Windows/win.ini', 'absolute path'],
    ['runs//status.json', 'empty segment'],
    ['runs/', 'trailing'],
    ['', 'empty'],
    ['./status.json', '"." segment'],
    ['runs\\status.json', 'backslash'],
    ['runs/.~store-abc', 'reserved'],
  ])('rejects the key %j', async (key, why) => {
    await expect(store.put(key, 'x')).rejects.toThrow(InvalidKeyError)
    await expect(store.get(key)).rejects.toThrow(new RegExp(why))
    await expect(store.delete(key)).rejects.toThrow(InvalidKeyError)
  })

  it('rejects list prefixes that climb out of the root', async () => {
    await expect(store.list('../')).rejects.toThrow(InvalidKeyError)
    await expect(store.list('runs/..')).rejects.toThrow(InvalidKeyError)
    await expect(store.list('/')).rejects.toThrow(InvalidKeyError)
  })

  it('maps keys to files under the root and names itself with a file URL', async () => {
    await store.put('runs/r1/status.json', '{}')

    expect((await stat(join(root, 'runs', 'r1', 'status.json'))).isFile()).toBe(true)
    expect(store.location).toBe(`file://${root}`)
  })

  it('keeps the previous object when a streamed write fails, and leaves no temporary file', async () => {
    // Prepare
    await store.put('runs/r1/log.txt', 'complete old content')

    // Act
    await expect(store.put('runs/r1/log.txt', failingStream())).rejects.toThrow('connection reset')

    // Assess
    expect(Buffer.from((await store.get('runs/r1/log.txt'))!).toString()).toBe('complete old content')
    expect(await readdir(join(root, 'runs', 'r1'))).toEqual(['log.txt'])
  })

  it('never lists a write in progress', async () => {
    // A temporary file as a concurrent writer (or a crash) would leave it.
    await store.put('runs/r1/status.json', '{}')
    await writeFile(join(root, 'runs', 'r1', '.~store-0123456789ab'), 'half')

    expect((await store.list('')).map((o) => o.key)).toEqual(['runs/r1/status.json'])
  })

  it('removes folders emptied by a delete, but not the root', async () => {
    await store.put('runs/r1/checkpoint/epoch.json', '{}')

    await store.delete('runs/r1/checkpoint/epoch.json')

    expect(await readdir(root)).toEqual([])
  })

  it('lists an empty result when the root does not exist yet', async () => {
    const missing = new FolderStore(join(root, 'not-created'))

    expect(await missing.list('')).toEqual([])
    expect(await missing.get('a')).toBeUndefined()
  })

  it('treats a folder as no object', async () => {
    await store.put('runs/r1/status.json', '{}')

    expect(await store.get('runs/r1')).toBeUndefined()
    expect(await store.getStream('runs/r1')).toBeUndefined()
  })
})
