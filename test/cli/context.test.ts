import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openS3 } from '../../cli/context.js'
import { loadOrCreateCredentials } from '../../local/s3-auth.js'
import { UsageError } from '../../cli/io.js'

describe('CLI S3 configuration', () => {
  it('takes the bucket from --bucket, then AGEGENDER_BUCKET, then the local default on a loopback endpoint', async () => {
    const local = { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:4568' }
    expect(openS3({ bucket: 'flag' }, { ...local, AGEGENDER_BUCKET: 'env' }).bucket).toBe('flag')
    expect(openS3({}, { ...local, AGEGENDER_BUCKET: 'env' }).bucket).toBe('env')
    expect(openS3({}, local).bucket).toBe('agegender')
  })

  it("uses the local system's saved credentials when none are configured, and presigns report links", async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'cli-context-'))
    try {
      await mkdir(join(cwd, '.local'))
      const saved = await loadOrCreateCredentials(join(cwd, '.local'), () => ({
        accessKeyId: 'S3RVER',
        secretAccessKey: 'secret-1',
      }))
      const s3 = openS3({}, { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:4568' }, cwd)
      expect(await s3.client.config.credentials()).toMatchObject(saved)
      expect(await s3.localUrl('runs/a b/report.html')).toMatch(
        /^http:\/\/127\.0\.0\.1:4568\/agegender\/runs\/a%20b\/report\.html\?.*X-Amz-Signature=[0-9a-f]{64}/
      )
    } finally {
      await rm(cwd, { recursive: true, force: true })
    }
  })

  it('needs a bucket name against AWS, and an http(s) --endpoint', async () => {
    expect(() => openS3({}, {})).toThrow(UsageError)
    expect(() => openS3({}, {})).toThrow(/AGEGENDER_BUCKET/)
    await expect(openS3({}, { AGEGENDER_BUCKET: 'b' }).localUrl('k')).resolves.toBeUndefined()
    expect(() => openS3({ endpoint: 'localhost:4566' }, {})).toThrow(/--endpoint must be an http\(s\) URL/)
  })

  it('--endpoint wins over the environment', async () => {
    const s3 = openS3({ endpoint: 'http://localhost:4566' }, { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:4568' })
    expect(s3.endpoint).toBe('http://localhost:4566')
    const endpoint = await s3.client.config.endpoint?.()
    expect(endpoint?.hostname).toBe('localhost')
    expect(endpoint?.port).toBe(4566)
  })
})
