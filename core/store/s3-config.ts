/**
 * S3 client settings that let the same code talk to AWS, LocalStack or the embedded s3rver, chosen by the
 * environment only.
 *
 * - Endpoint: the SDK's own standard variables, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (or `endpoint_url`
 *   in the shared config file). The SDK reads them itself; we only look at them to pick the defaults below.
 * - Path-style addressing (`http://host/bucket/key`): `S3_FORCE_PATH_STYLE=true|false` when set; otherwise on
 *   whenever a custom endpoint variable is set, since s3rver and LocalStack cannot resolve `bucket.127.0.0.1`.
 * - Checksums: with a custom endpoint, `requestChecksumCalculation` and `responseChecksumValidation` default to
 *   `WHEN_REQUIRED`. The SDK's default (`WHEN_SUPPORTED`) sends streamed PUT bodies as `aws-chunked` with a
 *   trailing CRC32, which s3rver stores verbatim: the object silently gains the chunk framing. The standard
 *   `AWS_REQUEST_CHECKSUM_CALCULATION` / `AWS_RESPONSE_CHECKSUM_VALIDATION` variables still win when set.
 * - Region: with a custom endpoint and no `AWS_REGION`, `us-east-1` (the emulators ignore it; the SDK needs one).
 *
 * Against real AWS (no endpoint variable) nothing is overridden: virtual-hosted style and default checksums.
 * @module
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3'

export type Env = Readonly<Record<string, string | undefined>>

/** The custom S3 endpoint the SDK will use, if the environment names one. */
export function customS3Endpoint(env: Env = process.env): string | undefined {
  if (isTrue(env['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS'])) return undefined
  return nonEmpty(env['AWS_ENDPOINT_URL_S3']) ?? nonEmpty(env['AWS_ENDPOINT_URL'])
}

/**
 * Constructor options for `new S3Client(...)` derived from `env` (see the module header for the rules).
 * @example
 * const client = new S3Client(s3ClientConfig())
 */
export function s3ClientConfig(env: Env = process.env): S3ClientConfig {
  const custom = customS3Endpoint(env) !== undefined
  const config: S3ClientConfig = {}
  const pathStyle = env['S3_FORCE_PATH_STYLE']
  if (pathStyle !== undefined && pathStyle !== '') {
    if (!isTrue(pathStyle) && !isFalse(pathStyle)) {
      throw new Error(`S3_FORCE_PATH_STYLE must be true or false, got ${JSON.stringify(pathStyle)}`)
    }
    config.forcePathStyle = isTrue(pathStyle)
  } else if (custom) {
    config.forcePathStyle = true
  }
  if (custom) {
    if (!nonEmpty(env['AWS_REQUEST_CHECKSUM_CALCULATION'])) config.requestChecksumCalculation = 'WHEN_REQUIRED'
    if (!nonEmpty(env['AWS_RESPONSE_CHECKSUM_VALIDATION'])) config.responseChecksumValidation = 'WHEN_REQUIRED'
    if (!nonEmpty(env['AWS_REGION'])) config.region = nonEmpty(env['AWS_DEFAULT_REGION']) ?? 'us-east-1'
  }
  return config
}

const nonEmpty = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim())
const isTrue = (v: string | undefined) => v !== undefined && /^(true|1|yes)$/i.test(v.trim())
const isFalse = (v: string | undefined) => v !== undefined && /^(false|0|no)$/i.test(v.trim())
