/**
 * The embedded S3 server under a reader polling an object while a writer replaces it (what `status --follow` and
 * the local system's tests do with a run's status.json): every read returns one whole version, never a body shorter
 * than its Content-Length (which the SDK reports as `aborted`).
 */
import { S3Client } from '@aws-sdk/client-s3'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { S3Store } from '../../core/store/s3-store.js'
import { startEmbeddedS3, type EmbeddedS3 } from '../../local/embedded-s3.js'

let root: string
let server: EmbeddedS3
let store: S3Store

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'embedded-s3-consistency-'))
  server = await startEmbeddedS3({ directory: join(root, 'data'), bucket: 'consistency' })
  store = new S3Store({ bucket: 'consistency', client: new S3Client(server.clientConfig) })
})
afterAll(async () => {
  await server.stop()
  await rm(root, { recursive: true, force: true })
})

it('reads whole versions of an object that is being rewritten with other lengths', { timeout: 60_000 }, async () => {
  // versions of very different lengths, so a body cut to another version's length cannot parse
  const version = (i: number) => JSON.stringify({ i, pad: 'x'.repeat(i % 2 === 0 ? 20 : 20_000) })
  await store.put('runs/r/status.json', version(0))
  let writing = true
  const writer = (async () => {
    for (let i = 1; writing; i++) await store.put('runs/r/status.json', version(i))
  })()
  const seen = new Set<number>()
  try {
    for (let n = 0; n < 300; n++) {
      const body = await store.get('runs/r/status.json')
      const parsed = JSON.parse(Buffer.from(body!).toString('utf8')) as { i: number; pad: string }
      expect(parsed.pad.length).toBe(parsed.i % 2 === 0 ? 20 : 20_000)
      seen.add(parsed.i)
    }
  } finally {
    writing = false
    await writer
  }
  // the reads overlapped many writes
  expect(seen.size).toBeGreaterThan(10)
})
