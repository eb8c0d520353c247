/**
 * The embedded S3 server (local/embedded-s3.ts): persistence across restarts and the S3 event records it
 * forwards. Lives here, beside the store tests, because it is the S3 the store tests run against.
 */
import { CopyObjectCommand, DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3'
import type { S3EventRecord } from 'aws-lambda'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { S3Store } from '../../../core/store/s3-store.js'
import { s3ClientConfig } from '../../../core/store/s3-config.js'
import { encodeEventKey, startEmbeddedS3, type EmbeddedS3 } from '../../../local/embedded-s3.js'

let directory: string
const running: EmbeddedS3[] = []

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'embedded-s3-'))
})

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()))
  await rm(directory, { recursive: true, force: true })
})

async function start(onObjectCreated?: (r: S3EventRecord) => void, onError?: (err: unknown) => void) {
  const server = await startEmbeddedS3({
    directory,
    bucket: 'local',
    ...(onObjectCreated ? { onObjectCreated } : {}),
    ...(onError ? { onError } : {}),
  })
  running.push(server)
  const client = new S3Client(server.clientConfig)
  return { server, client, store: new S3Store({ bucket: 'local', client }) }
}

describe('startEmbeddedS3', () => {
  it('gives client settings equal to what the SDK environment it exports would produce', async () => {
    const { server } = await start()

    expect(server.clientConfig).toEqual({
      ...s3ClientConfig(server.env),
      region: server.env['AWS_REGION'],
      endpoint: server.env['AWS_ENDPOINT_URL_S3'],
      credentials: {
        accessKeyId: server.env['AWS_ACCESS_KEY_ID'],
        secretAccessKey: server.env['AWS_SECRET_ACCESS_KEY'],
      },
    })
  })

  it('listens on a free loopback port and keeps objects across a restart', async () => {
    // Prepare
    const first = await start()
    expect(first.server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    await first.store.put('datasets/faces.zip', 'zip bytes')

    // Act
    await running.pop()!.stop()
    const second = await start()

    // Assess
    expect(Buffer.from((await second.store.get('datasets/faces.zip'))!).toString()).toBe('zip bytes')
  })

  it('forwards object-created events as AWS S3 event records', async () => {
    // Prepare
    const records: S3EventRecord[] = []
    const { store } = await start((r) => records.push(r))

    // Act
    await store.put('datasets/UTK faces+100%.zip', 'abc')
    await store.put('datasets/second.zip', 'def')

    // Assess
    expect(records).toHaveLength(2)
    const [first, second] = records as [S3EventRecord, S3EventRecord]
    expect(first).toMatchObject({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      eventName: 'ObjectCreated:Put',
      s3: {
        bucket: { name: 'local', arn: 'arn:aws:s3:::local' },
        object: {
          key: 'datasets/UTK+faces%2B100%25.zip',
          size: 3,
          eTag: createHash('md5').update('abc').digest('hex'),
        },
      },
    })
    expect(first.s3.object.versionId).toBeUndefined()
    expect(first.s3.object.sequencer).toMatch(/^[0-9A-F]{16}$/)
    expect(second.s3.object.sequencer > first.s3.object.sequencer).toBe(true)
  })

  it('fills in the ETag of Copy events and forwards no delete events', async () => {
    const records: S3EventRecord[] = []
    const { client, store } = await start((r) => records.push(r))
    await store.put('datasets/a.zip', 'abc')

    await client.send(
      new CopyObjectCommand({ Bucket: 'local', Key: 'datasets/b.zip', CopySource: 'local/datasets/a.zip' })
    )
    await client.send(new DeleteObjectCommand({ Bucket: 'local', Key: 'datasets/a.zip' }))
    await vi.waitFor(() => expect(records).toHaveLength(2))

    expect(records[1]).toMatchObject({
      eventName: 'ObjectCreated:Copy',
      s3: { object: { key: 'datasets/b.zip', eTag: createHash('md5').update('abc').digest('hex') } },
    })
  })

  it('reports a failing event handler without failing the upload', async () => {
    const onError = vi.fn()
    const { store } = await start(() => {
      throw new Error('runner down')
    }, onError)

    await store.put('datasets/a.zip', 'abc')

    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ message: 'runner down' }), expect.anything())
  })
})

describe('encodeEventKey', () => {
  it.each([
    ['datasets/plain.zip', 'datasets/plain.zip'],
    ['datasets/with space.zip', 'datasets/with+space.zip'],
    ['datasets/a+b=c&d.zip', 'datasets/a%2Bb%3Dc%26d.zip'],
    ['datasets/(1)!~.zip', 'datasets/%281%29%21%7E.zip'],
    ['datasets/ümlaut.zip', 'datasets/%C3%BCmlaut.zip'],
  ])('encodes %j as S3 notifications do', (key, encoded) => {
    expect(encodeEventKey(key)).toBe(encoded)
    expect(decodeURIComponent(encoded.replace(/\+/g, ' '))).toBe(key)
  })
})
