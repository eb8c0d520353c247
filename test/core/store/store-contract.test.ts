/**
 * One contract, two stores: FolderStore on a temp folder and S3Store on a real (embedded) S3 server must
 * behave the same for everything the pipeline relies on.
 */
import { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { getJson, putJson } from '../../../core/store/object-store.js'
import { useTestStores } from '../../support/stores.js'

const { factories } = useTestStores('contract')
/** Any JSON object, kept whole. */
const Doc = z.looseObject({})

const utf8 = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8'))

describe.each(factories)('ObjectStore contract: %s', (_name, makeStore) => {
  it('round-trips strings and bytes', async () => {
    // Prepare
    const store = await makeStore()
    const bytes = new Uint8Array([0, 1, 2, 254, 255])

    // Act
    await store.put('runs/r1/metrics.json', '{"mae":5.2}', { contentType: 'application/json' })
    await store.put('runs/r1/model/weights.bin', bytes)

    // Assess
    expect(utf8(await store.get('runs/r1/metrics.json'))).toBe('{"mae":5.2}')
    expect(await store.get('runs/r1/model/weights.bin')).toEqual(bytes)
  })

  it('returns undefined for missing keys, from get and getStream', async () => {
    const store = await makeStore()
    await store.put('present.txt', 'x')

    expect(await store.get('absent.txt')).toBeUndefined()
    expect(await store.getStream('absent.txt')).toBeUndefined()
    expect(await store.get('present.txt/below')).toBeUndefined()
  })

  it('writes from a stream and reads back as a stream', async () => {
    const store = await makeStore()
    const chunks = ['first line\n', 'second line\n', 'x'.repeat(70_000)]

    await store.put('runs/r1/log.txt', Readable.from(chunks.map((c) => Buffer.from(c))))
    const stream = await store.getStream('runs/r1/log.txt')

    expect(stream).toBeDefined()
    expect(await text(stream!)).toBe(chunks.join(''))
  })

  it('overwrites an existing key', async () => {
    const store = await makeStore()

    await store.put('models/latest.json', 'old')
    await store.put('models/latest.json', 'new')

    expect(utf8(await store.get('models/latest.json'))).toBe('new')
    expect((await store.list('models/')).map((o) => o.key)).toEqual(['models/latest.json'])
  })

  it('lists recursively, in key order, with sizes and dates', async () => {
    // Prepare
    const store = await makeStore()
    const keys = [
      'runs/b/status.json',
      'runs/a/model/model.json',
      'runs/a/status.json',
      'runs/ab.json',
      'runsx/other',
      'top.txt',
    ]
    for (const key of keys) await store.put(key, `content of ${key}`)

    // Act
    const all = await store.list('')
    const runs = await store.list('runs/')
    const partial = await store.list('runs/a')

    // Assess
    expect(all.map((o) => o.key)).toEqual([...keys].sort())
    expect(runs.map((o) => o.key)).toEqual([
      'runs/a/model/model.json',
      'runs/a/status.json',
      'runs/ab.json',
      'runs/b/status.json',
    ])
    expect(partial.map((o) => o.key)).toEqual(['runs/a/model/model.json', 'runs/a/status.json', 'runs/ab.json'])
    expect(runs[0]!.size).toBe(Buffer.byteLength('content of runs/a/model/model.json'))
    expect(runs[0]!.lastModified).toBeInstanceOf(Date)
    expect(Math.abs(runs[0]!.lastModified.getTime() - Date.now())).toBeLessThan(60_000)
  })

  it('lists nothing under a prefix with no objects', async () => {
    const store = await makeStore()
    expect(await store.list('runs/')).toEqual([])
    await store.put('runs/x/a', 'a')
    expect(await store.list('models/')).toEqual([])
  })

  it('deletes, and deleting a missing key is not an error', async () => {
    const store = await makeStore()
    await store.put('runs/r1/checkpoint/state.json', '{}')
    await store.put('runs/r1/status.json', '{}')

    await store.delete('runs/r1/checkpoint/state.json')
    await store.delete('runs/r1/never-was.json')

    expect(await store.get('runs/r1/checkpoint/state.json')).toBeUndefined()
    expect((await store.list('runs/')).map((o) => o.key)).toEqual(['runs/r1/status.json'])
  })

  it('keeps keys with spaces, plus, percent and non-ASCII characters intact', async () => {
    const store = await makeStore()
    const key = 'datasets/UTK faces+100% (ü).zip'

    await store.put(key, 'zip bytes')

    expect(utf8(await store.get(key))).toBe('zip bytes')
    expect((await store.list('datasets/')).map((o) => o.key)).toEqual([key])
  })

  it('reads and writes JSON documents', async () => {
    const store = await makeStore()

    await putJson(store, 'runs/r1/status.json', { runId: 'r1', state: 'queued' })

    expect(await getJson(store, 'runs/r1/status.json', Doc)).toEqual({ runId: 'r1', state: 'queued' })
    expect(await getJson(store, 'runs/r2/status.json', Doc)).toBeUndefined()
  })
})
