import { createServer, type Server } from 'node:http'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { createModel } from '../../core/model.js'
import { loadPretrainedBytes } from '../../core/pretrained.js'
import { pretrainedCacheKey, PretrainedSourceError, readPretrained } from '../../core/pretrained-source.js'
import { sha256Hex } from '../../core/split.js'
import { FolderStore } from '../../core/store/index.js'
import { SHARED_DIR, sharedPresent } from '../support/shared.js'

const FIXTURE = 'fixtures/resnet18-torchvision/model.safetensors'
const present = sharedPresent(FIXTURE, 'pretrained weights over HTTP')

describe.skipIf(!present)('pretrained weights from a URL', () => {
  let server: Server
  let url: string
  let requests = 0
  let bytes: Buffer
  let dir: string

  beforeAll(async () => {
    bytes = readFileSync(resolve(SHARED_DIR, FIXTURE))
    server = createServer((req, res) => {
      requests++
      if (req.url !== '/resnet18/model.safetensors') {
        res.writeHead(404, { connection: 'close' }).end('not found')
        return
      }
      // no keep-alive: a socket the server closes between tests must not be reused by the next fetch
      res
        .writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': bytes.length,
          connection: 'close',
        })
        .end(bytes)
    })
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
    const { port } = server.address() as { port: number }
    url = `http://127.0.0.1:${port}/resnet18/model.safetensors`
    dir = await mkdtemp(join(tmpdir(), 'pretrained-'))
  })
  afterAll(async () => {
    server.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('downloads once, checks the digest, caches in the store and loads into the model', async () => {
    const cache = new FolderStore(dir)
    const sha256 = sha256Hex(bytes)
    const before = requests
    const first = await readPretrained(url, { sha256, cache })
    expect(first.from).toBe('download')
    expect(first.sha256).toBe(sha256)
    expect(await cache.get(pretrainedCacheKey(url, sha256))).toBeDefined()
    const second = await readPretrained(url, { sha256, cache })
    expect(second.from).toBe('cache')
    expect(requests - before).toBe(1)
    await initEngine()
    const model = createModel({ inputSize: 64 })
    expect(loadPretrainedBytes(model, second.bytes)).toBe(40)
    model.dispose()
  })

  it('refuses weights whose digest differs from the pinned one, downloaded or cached', async () => {
    const wrong = 'ab'.repeat(32)
    await expect(readPretrained(url, { sha256: wrong })).rejects.toThrow(/have sha256 .* expected abab/)
    const cache = new FolderStore(await mkdtemp(join(dir, 'poisoned-')))
    await cache.put(pretrainedCacheKey(url, wrong), new Uint8Array([1, 2, 3]))
    await expect(readPretrained(url, { sha256: wrong, cache })).rejects.toThrow(PretrainedSourceError)
  })

  it('names the URL and what to do when the download fails', async () => {
    await expect(readPretrained(url.replace('model.safetensors', 'missing'))).rejects.toThrow(
      /HTTP 404.*s3:\/\/bucket\/key/
    )
  })
})

describe('pretrained sources', () => {
  it('reads a local path and an s3:// URI through the given store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pretrained-src-'))
    try {
      const store = new FolderStore(dir)
      await store.put('weights/w.safetensors', new Uint8Array([7, 8, 9]))
      const viaS3 = await readPretrained('s3://my-bucket/weights/w.safetensors', {
        openStore: (uri) => (uri === 's3://my-bucket' ? store : new FolderStore(join(dir, 'nope'))),
      })
      expect([...viaS3.bytes]).toEqual([7, 8, 9])
      expect(viaS3.from).toBe('s3')
      const viaPath = await readPretrained(join(dir, 'weights/w.safetensors'))
      expect(viaPath.sha256).toBe(sha256Hex(new Uint8Array([7, 8, 9])))
      await expect(readPretrained('s3://my-bucket/absent', { openStore: () => store })).rejects.toThrow(/not found/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses plain http beyond loopback, other schemes and malformed digests', async () => {
    await expect(readPretrained('http://example.com/w.safetensors')).rejects.toThrow(
      /must be a path, s3:\/\/ or https:\/\//
    )
    await expect(readPretrained('ftp://example.com/w')).rejects.toThrow(PretrainedSourceError)
    await expect(readPretrained('/nonexistent/w.safetensors')).rejects.toThrow(/cannot read pretrained weights/)
    await expect(readPretrained('/x', { sha256: 'xyz' })).rejects.toThrow(/64 hex digits/)
  })
})
