/** How the environment picks endpoint addressing, checksums and region for the S3 client. */
import { describe, expect, it } from 'vitest'
import { customS3Endpoint, s3ClientConfig } from '../../../core/store/s3-config.js'

describe('s3ClientConfig', () => {
  it('overrides nothing for real AWS (no endpoint variable)', () => {
    expect(s3ClientConfig({ AWS_REGION: 'eu-west-1' })).toEqual({})
  })

  it('uses path style, WHEN_REQUIRED checksums and a default region for a custom endpoint', () => {
    expect(s3ClientConfig({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:4568' })).toEqual({
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      region: 'us-east-1',
    })
  })

  it('treats the global AWS_ENDPOINT_URL (LocalStack) as a custom endpoint too', () => {
    expect(customS3Endpoint({ AWS_ENDPOINT_URL: 'http://localhost.localstack.cloud:4566' })).toBe(
      'http://localhost.localstack.cloud:4566'
    )
    expect(s3ClientConfig({ AWS_ENDPOINT_URL: 'http://localhost:4566', AWS_REGION: 'eu-west-1' })).toEqual({
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
  })

  it('prefers the S3-specific endpoint and honours AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', () => {
    expect(customS3Endpoint({ AWS_ENDPOINT_URL: 'http://a', AWS_ENDPOINT_URL_S3: 'http://b' })).toBe('http://b')
    expect(
      customS3Endpoint({ AWS_ENDPOINT_URL: 'http://a', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' })
    ).toBeUndefined()
  })

  it('lets S3_FORCE_PATH_STYLE decide either way', () => {
    expect(s3ClientConfig({ S3_FORCE_PATH_STYLE: 'true' })).toEqual({ forcePathStyle: true })
    const env = { AWS_ENDPOINT_URL_S3: 'http://minio:9000', S3_FORCE_PATH_STYLE: 'false', AWS_REGION: 'x' }
    expect(s3ClientConfig(env)).toMatchObject({ forcePathStyle: false })
  })

  it('leaves checksum modes to the SDK when their standard variables are set', () => {
    const config = s3ClientConfig({
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_SUPPORTED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_SUPPORTED',
    })
    expect(config.requestChecksumCalculation).toBeUndefined()
    expect(config.responseChecksumValidation).toBeUndefined()
  })

  it('fails naming S3_FORCE_PATH_STYLE when it is not a boolean', () => {
    expect(() => s3ClientConfig({ S3_FORCE_PATH_STYLE: 'maybe' })).toThrow(
      /S3_FORCE_PATH_STYLE must be true or false, got "maybe"/
    )
  })
})
