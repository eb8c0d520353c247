import { describe, expect, it } from 'vitest'
import { openS3 } from '../../cli/context.js'
import { UsageError } from '../../cli/io.js'

describe('CLI S3 configuration', () => {
  it('takes the bucket from --bucket, then AGEGENDER_BUCKET, then the local default on a loopback endpoint', async () => {
    const local = { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:4568' }
    expect(openS3({ bucket: 'flag' }, { ...local, AGEGENDER_BUCKET: 'env' }).bucket).toBe('flag')
    expect(openS3({}, { ...local, AGEGENDER_BUCKET: 'env' }).bucket).toBe('env')
    const s3 = openS3({}, local)
    expect(s3.bucket).toBe('agegender')
    expect(s3.localUrl('runs/a b/report.html')).toBe('http://127.0.0.1:4568/agegender/runs/a%20b/report.html')
    // no credentials configured: the embedded server's
    expect(await s3.client.config.credentials()).toMatchObject({ accessKeyId: 'S3RVER' })
  })

  it('needs a bucket name against AWS, and an http(s) --endpoint', () => {
    expect(() => openS3({}, {})).toThrow(UsageError)
    expect(() => openS3({}, {})).toThrow(/AGEGENDER_BUCKET/)
    expect(openS3({}, { AGEGENDER_BUCKET: 'b' }).localUrl('k')).toBeUndefined()
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
