/**
 * Conditional reads and writes (If-None-Match / If-Match) behave the same on FolderStore and on S3Store against
 * the embedded S3 server, and `updateJson` never loses a concurrent update.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { text } from 'node:stream/consumers'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { PreconditionFailedError, getJson, updateJson, type ObjectStore } from '../../../core/store/object-store.js'
import { prefixedStore } from '../../../core/store/prefixed-store.js'
import { useTestStores } from '../../support/stores.js'

const stores = useTestStores('cond')
const Counter = z.object({ n: z.number() })
const factories: [string, () => Promise<ObjectStore>][] = [
  ...stores.factories,
  ['prefixedStore(S3Store)', async () => prefixedStore(await stores.newS3Store(), 'runs/r1/')],
]

const utf8 = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8'))

describe.each(factories)('conditional writes: %s', (_name, makeStore) => {
  it('If-None-Match: * creates once and refuses to overwrite', async () => {
    const store = await makeStore()
    await store.put('status.json', 'first', { ifNoneMatch: '*' })
    await expect(store.put('status.json', 'second', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(
      PreconditionFailedError
    )
    expect(utf8(await store.get('status.json'))).toBe('first')
  })

  it('of two concurrent If-None-Match creates exactly one wins', async () => {
    const store = await makeStore()
    const results = await Promise.allSettled(
      ['a', 'b', 'c', 'd'].map((v) => store.put('claim.json', v, { ifNoneMatch: '*' }))
    )
    const won = results.filter((r) => r.status === 'fulfilled')
    expect(won).toHaveLength(1)
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PreconditionFailedError)
    const index = results.findIndex((r) => r.status === 'fulfilled')
    expect(utf8(await store.get('claim.json'))).toBe(['a', 'b', 'c', 'd'][index])
  })

  it('If-Match replaces only the version that was read', async () => {
    const store = await makeStore()
    await store.put('latest.json', 'v1')
    const read = await store.getEntry('latest.json')
    expect(read && utf8(read.body)).toBe('v1')
    await store.put('latest.json', 'v2', { ifMatch: read!.etag })
    // the ETag of v1 no longer matches
    await expect(store.put('latest.json', 'v3', { ifMatch: read!.etag })).rejects.toBeInstanceOf(
      PreconditionFailedError
    )
    expect(utf8(await store.get('latest.json'))).toBe('v2')
    // If-Match on a missing key fails too
    await expect(store.put('missing.json', 'x', { ifMatch: read!.etag })).rejects.toBeInstanceOf(
      PreconditionFailedError
    )
    expect(await store.get('missing.json')).toBeUndefined()
  })

  it('getEntry gives the same ETag a read with If-Match accepts', async () => {
    const store = await makeStore()
    await store.put('data.zip', 'bytes of the first upload')
    const { etag } = (await store.getEntry('data.zip'))!
    expect(await text((await store.getStream('data.zip', { ifMatch: etag }))!)).toBe('bytes of the first upload')
    await store.put('data.zip', 'bytes of a second upload')
    await expect(store.getStream('data.zip', { ifMatch: etag })).rejects.toBeInstanceOf(PreconditionFailedError)
    await expect(store.get('data.zip', { ifMatch: etag })).rejects.toBeInstanceOf(PreconditionFailedError)
    expect(await store.getEntry('nothing-here')).toBeUndefined()
  })

  it('updateJson applies every one of many concurrent increments', async () => {
    const store = await makeStore()
    await Promise.all(
      Array.from({ length: 6 }, () =>
        updateJson<{ n: number }>(store, 'counter.json', (c) => ({ n: (c?.n ?? 0) + 1 }), { attempts: 50 })
      )
    )
    expect(await getJson(store, 'counter.json', Counter)).toEqual({ n: 6 })
  })

  it('updateJson with createFirst creates without reading, and updates an existing object', async () => {
    const store = await makeStore()
    const seen: unknown[] = []
    const change = (c: { n: number } | undefined) => {
      seen.push(c)
      return { n: (c?.n ?? 0) + 1 }
    }
    await updateJson(store, 'cf.json', change, { createFirst: true })
    await updateJson(store, 'cf.json', change, { createFirst: true })
    expect(await getJson(store, 'cf.json', Counter)).toEqual({ n: 2 })
    expect(seen).toEqual([undefined, undefined, { n: 1 }])
  })

  it('updateJson writes nothing when the change declines', async () => {
    const store = await makeStore()
    await updateJson(store, 'x.json', () => ({ v: 1 }))
    expect(await updateJson(store, 'x.json', () => undefined)).toBeUndefined()
    expect(await getJson(store, 'x.json', z.object({ v: z.number() }))).toEqual({ v: 1 })
  })
})

describe('versions', () => {
  it('a folder store refuses a read by version id with a clear error', async () => {
    const store = await factories[0]![1]()
    await store.put('datasets/a.zip', 'x')
    await expect(store.get('datasets/a.zip', { versionId: 'v1' })).rejects.toThrow(/keeps no object versions/)
  })

  it('S3Store sends the version id (s3rver has no versioning and answers only "null")', async () => {
    const store = await stores.newS3Store()
    await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: 'datasets/a.zip', Body: 'x' }))
    expect(utf8(await store.get('datasets/a.zip', { versionId: 'null' }))).toBe('x')
  })
})
