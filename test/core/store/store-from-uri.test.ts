/** storeFromUri: one configuration string picks S3 (with an optional prefix) or a folder. */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { FolderStore, S3Store, storeFromUri } from '../../../core/store/index.js'
import { useTestS3 } from '../../support/s3-server.js'

const s3 = useTestS3('uri-bucket')

describe('storeFromUri', () => {
  it('opens a bucket from s3://bucket', async () => {
    const store = storeFromUri(`s3://${s3().bucket}`)

    await store.put('runs/r1/status.json', '{}')

    expect(store).toBeInstanceOf(S3Store)
    expect(store.location).toBe(`s3://${s3().bucket}`)
    expect(await new S3Store({ bucket: s3().bucket }).get('runs/r1/status.json')).toBeDefined()
  })

  it('opens a view under a prefix from s3://bucket/prefix', async () => {
    const store = storeFromUri(`s3://${s3().bucket}/team-a`)

    await store.put('models/latest.json', '{"runId":"r1"}')

    expect(store.location).toBe(`s3://${s3().bucket}/team-a/`)
    expect((await store.list('')).map((o) => o.key)).toEqual(['models/latest.json'])
    expect(await new S3Store({ bucket: s3().bucket }).get('team-a/models/latest.json')).toBeDefined()
  })

  it('opens a folder from a file:// URL, an absolute path or a relative path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'uri-'))
    try {
      const fromUrl = storeFromUri(pathToFileURL(dir).href)
      await fromUrl.put('a.txt', 'A')

      expect(fromUrl).toBeInstanceOf(FolderStore)
      expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('A')
      expect((storeFromUri(dir) as FolderStore).root).toBe(dir)
      expect((storeFromUri('some/rel') as FolderStore).root).toBe(resolve('some/rel'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('fails clearly on an empty URI, a missing bucket or an unknown scheme', () => {
    expect(() => storeFromUri('')).toThrow(/empty/)
    expect(() => storeFromUri('s3://')).toThrow(/names no bucket/)
    expect(() => storeFromUri('gs://bucket')).toThrow(/unsupported scheme gs:\/\//)
  })
})
