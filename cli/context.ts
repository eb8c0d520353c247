/**
 * Where the CLI's bucket is: the embedded S3 server, LocalStack or AWS, decided by configuration alone.
 *
 * - Bucket: `--bucket`, else `AGEGENDER_BUCKET`, else `agegender` when the S3 endpoint is on this machine (the
 *   local system's bucket); against AWS it must be named.
 * - Endpoint: `--endpoint` (sets `AWS_ENDPOINT_URL` for this command), else the SDK's standard
 *   `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`; none means AWS. Addressing, checksums and region follow
 *   `core/store/s3-config.ts`; credentials come from the SDK's usual chain, except that an endpoint on this
 *   machine with no credentials configured gets the embedded server's (`S3RVER`; LocalStack accepts any).
 * @module
 */
import { S3Client } from '@aws-sdk/client-s3'
import { customS3Endpoint, s3ClientConfig } from '../core/store/s3-config.js'
import { S3Store } from '../core/store/s3-store.js'
import { UsageError } from './io.js'

export const LOCAL_BUCKET = 'agegender'
/** `EMBEDDED_S3_CREDENTIALS` of `local/embedded-s3.ts`, without loading s3rver into every CLI command. */
const EMBEDDED_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

export interface GlobalOptions {
  readonly bucket?: string | undefined
  readonly endpoint?: string | undefined
}

export interface S3Context {
  readonly bucket: string
  /** The custom endpoint in use, if any. */
  readonly endpoint: string | undefined
  readonly client: S3Client
  readonly store: S3Store
  /** `s3://bucket/key` */
  uri(key: string): string
  /** A browser-openable URL for `key`, when the endpoint is on this machine (s3rver serves unsigned GETs). */
  localUrl(key: string): string | undefined
}

/**
 * @example
 * const s3 = openS3({ bucket: 'agegender' }, process.env)
 * await s3.store.list('runs/')
 */
export function openS3(globals: GlobalOptions, env: Readonly<Record<string, string | undefined>>): S3Context {
  if (globals.endpoint !== undefined && !/^https?:\/\/[^/]+/.test(globals.endpoint)) {
    throw new UsageError(`--endpoint must be an http(s) URL, got ${JSON.stringify(globals.endpoint)}`)
  }
  const effectiveEnv = globals.endpoint ? { ...env, AWS_ENDPOINT_URL: globals.endpoint, AWS_ENDPOINT_URL_S3: globals.endpoint } : env
  const endpoint = customS3Endpoint(effectiveEnv)
  const local = endpoint !== undefined && isLoopback(endpoint)
  const bucket = nonEmpty(globals.bucket) ?? nonEmpty(env['AGEGENDER_BUCKET']) ?? (local ? LOCAL_BUCKET : undefined)
  if (bucket === undefined) {
    throw new UsageError(
      'which bucket? Pass --bucket NAME or set AGEGENDER_BUCKET (for the local system: source .local/env.sh)',
    )
  }
  // On this machine with no credentials configured: the embedded server's (LocalStack takes any).
  const noCredentials = !nonEmpty(env['AWS_ACCESS_KEY_ID']) && !nonEmpty(env['AWS_PROFILE'])
  const client = new S3Client({
    ...s3ClientConfig(effectiveEnv),
    // An explicit endpoint beats whatever the SDK would read from the process environment.
    ...(globals.endpoint ? { endpoint: globals.endpoint } : {}),
    ...(local && noCredentials ? { credentials: { ...EMBEDDED_CREDENTIALS } } : {}),
  })
  const store = new S3Store({ bucket, client })
  return {
    bucket,
    endpoint,
    client,
    store,
    uri: (key) => `s3://${bucket}/${key}`,
    localUrl: (key) =>
      local && endpoint ? `${endpoint.replace(/\/+$/, '')}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}` : undefined,
  }
}

export function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname
    return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host)
  } catch {
    return false
  }
}

const nonEmpty = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim())
