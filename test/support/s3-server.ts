/**
 * A real S3 server for tests: the embedded s3rver in a temporary folder on a free loopback port, with the AWS
 * SDK pointed at it through the standard environment variables (so code under test configures itself exactly
 * as it would against LocalStack), and every object-created event it emits kept for assertions.
 * @module
 */
import { S3Client } from '@aws-sdk/client-s3'
import type { S3EventRecord } from 'aws-lambda'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, vi } from 'vitest'
import { s3ClientConfig } from '../../core/store/s3-config.js'
import { startEmbeddedS3, type EmbeddedS3 } from '../../local/embedded-s3.js'

export interface TestS3 {
  readonly server: EmbeddedS3
  readonly bucket: string
  readonly directory: string
  /** Every object-created record, in the order the server emitted them. */
  readonly events: S3EventRecord[]
  /** A client configured from the environment, as production code builds it. */
  client(): S3Client
  /** The newest event for a key (raw, not URL-encoded), or a clear failure. */
  lastEventFor(key: string): S3EventRecord
  stop(): Promise<void>
}

/** Starts a server and sets `AWS_ENDPOINT_URL_S3`, credentials and region until `stop()`. */
export async function startTestS3(bucket = 'test-bucket'): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 's3rver-test-'))
  const events: S3EventRecord[] = []
  const server = await startEmbeddedS3({
    directory,
    bucket,
    onObjectCreated: (record) => void events.push(record),
  })
  for (const [name, value] of Object.entries(server.env)) vi.stubEnv(name, value)
  // Whatever the developer's shell says, tests decide these from the endpoint alone.
  const decidedHere = ['AWS_ENDPOINT_URL', 'AWS_PROFILE', 'AWS_SESSION_TOKEN', 'S3_FORCE_PATH_STYLE']
  for (const name of [...decidedHere, 'AWS_REQUEST_CHECKSUM_CALCULATION', 'AWS_RESPONSE_CHECKSUM_VALIDATION']) {
    vi.stubEnv(name, undefined)
  }
  let client: S3Client | undefined
  return {
    server,
    bucket,
    directory,
    events,
    client: () => (client ??= new S3Client(s3ClientConfig())),
    lastEventFor(key) {
      const found = events.findLast((e) => decodeURIComponent(e.s3.object.key.replace(/\+/g, ' ')) === key)
      if (!found) {
        throw new Error(`no object-created event for ${key}; got ${events.map((e) => e.s3.object.key).join(', ')}`)
      }
      return found
    },
    async stop() {
      client?.destroy()
      await server.stop()
      vi.unstubAllEnvs()
      await rm(directory, { recursive: true, force: true })
    },
  }
}

/**
 * Registers `beforeAll`/`afterAll` hooks around a test file's server; read the handle inside tests.
 * @example
 * const s3 = useTestS3()
 * it('stores', async () => { await new S3Store({ bucket: s3().bucket }).put('k', 'v') })
 */
export function useTestS3(bucket?: string): () => TestS3 {
  let handle: TestS3 | undefined
  beforeAll(async () => {
    handle = await startTestS3(bucket)
  })
  afterAll(async () => {
    await handle?.stop()
  })
  return () => {
    if (!handle) throw new Error('the test S3 server is not running (useTestS3 hooks run before tests only)')
    return handle
  }
}
