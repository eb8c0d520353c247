/** S3Store specifics against a real S3 server (embedded s3rver): multipart, exact stream bytes, paging, HEAD. */
import { HeadObjectCommand } from '@aws-sdk/client-s3'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { S3Store } from '../../../core/store/s3-store.js'
import { useTestS3 } from '../../support/s3-server.js'

const MiB = 1024 * 1024
const s3 = useTestS3('store-bucket')
const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex')
const newStore = (props: Partial<ConstructorParameters<typeof S3Store>[0]> = {}) =>
  new S3Store({ bucket: s3().bucket, ...props })

/** Yields `total` pseudo-random bytes in 64 KiB chunks, so nothing knows the length up front. */
function streamOf(bytes: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += 64 * 1024) yield bytes.subarray(at, at + 64 * 1024)
    })()
  )
}

describe('S3Store', () => {
  it('uploads a body over the part size in parts (multipart) and reads back the same bytes', async () => {
    // Prepare
    const body = randomBytes(12 * MiB)
    const store = newStore({ partSize: 5 * MiB })

    // Act
    await store.put('datasets/big.zip', body)

    // Assess: s3rver reports a completed multipart upload as ObjectCreated:Post
    const event = s3().lastEventFor('datasets/big.zip')
    expect(event.eventName).toBe('ObjectCreated:Post')
    expect(event.s3.object.size).toBe(body.length)
    expect(md5((await store.get('datasets/big.zip'))!)).toBe(md5(body))
  })

  it('uploads a stream of unknown length over 5 MB in parts', async () => {
    const body = randomBytes(6 * MiB + 123)
    const store = newStore({ partSize: 5 * MiB })

    await store.put('runs/r1/model/weights.bin', streamOf(body))

    expect(s3().lastEventFor('runs/r1/model/weights.bin').eventName).toBe('ObjectCreated:Post')
    expect((await store.list('runs/r1/model/'))[0]?.size).toBe(body.length)
    expect(md5((await store.get('runs/r1/model/weights.bin'))!)).toBe(md5(body))
  })

  it('stores a small stream byte for byte (no aws-chunked framing in the object)', async () => {
    // The SDK's default checksum mode would send this as aws-chunked, which s3rver stores verbatim.
    const store = newStore()

    await store.put('runs/r1/log.txt', Readable.from([Buffer.from('hello'), Buffer.from(' world')]))

    expect(Buffer.from((await store.get('runs/r1/log.txt'))!).toString()).toBe('hello world')
    expect(s3().lastEventFor('runs/r1/log.txt').s3.object.size).toBe(11)
  })

  it('stores the content type', async () => {
    const store = newStore()

    await store.put('runs/r1/report.html', '<html></html>', { contentType: 'text/html' })
    await store.put('runs/r1/raw.bin', new Uint8Array([1]))

    const head = (key: string) =>
      s3()
        .client()
        .send(new HeadObjectCommand({ Bucket: s3().bucket, Key: key }))
    expect((await head('runs/r1/report.html')).ContentType).toBe('text/html')
    expect((await head('runs/r1/raw.bin')).ContentType).toBe('application/octet-stream')
  })

  it('follows list pagination', async () => {
    const store = newStore({ listPageSize: 2 })
    const keys = ['page/a', 'page/b', 'page/c', 'page/d', 'page/e']
    for (const key of keys) await store.put(key, key)

    expect((await store.list('page/')).map((o) => o.key)).toEqual(keys)
  })

  it('heads an object: size and ETag, or undefined when missing', async () => {
    const store = newStore()
    await store.put('datasets/small.zip', 'zip')

    expect(await store.head('datasets/small.zip')).toMatchObject({ size: 3, etag: md5(Buffer.from('zip')) })
    expect(await store.head('datasets/absent.zip')).toBeUndefined()
  })

  it('reports a missing bucket as an error, not as a missing key', async () => {
    const store = new S3Store({ bucket: 'no-such-bucket' })

    await expect(store.get('anything')).rejects.toThrow(/bucket/i)
  })
})
