/**
 * Where the CLI's bucket is: the embedded S3 server, LocalStack or AWS, decided by configuration alone.
 *
 * - Bucket: `--bucket`, else `AGEGENDER_BUCKET`, else `agegender` when the S3 endpoint is on this machine (the
 *   local system's bucket); against AWS it must be named.
 * - Endpoint: `--endpoint` (sets `AWS_ENDPOINT_URL` for this command), else the SDK's standard
 *   `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`; none means AWS. Addressing, checksums and region follow
 *   `core/store/s3-config.ts`; credentials come from the SDK's usual chain, except that an endpoint on this
 *   machine with no credentials configured gets the local system's, from `<data dir>/s3-credentials.json`
 *   (`.local` unless `AGEGENDER_DATA_DIR` says otherwise; LocalStack accepts any).
 * @module
 */
import { S3Client } from '@aws-sdk/client-s3'
import { resolve } from 'node:path'
import { customS3Endpoint, s3ClientConfig } from '../core/store/s3-config.js'
import { S3Store } from '../core/store/s3-store.js'
import { presignGetUrl, readLocalCredentials, type S3Credentials } from '../local/s3-auth.js'
import { UsageError } from './io.js'

export const LOCAL_BUCKET = 'agegender'

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
  /** A browser-openable (presigned, for an hour) URL for `key`, when the endpoint is on this machine. */
  localUrl(key: string): Promise<string | undefined>
}

/**
 * @example
 * const s3 = openS3({ bucket: 'agegender' }, process.env)
 * await s3.store.list('runs/')
 */
export function openS3(
  globals: GlobalOptions,
  env: Readonly<Record<string, string | undefined>>,
  cwd = process.cwd()
): S3Context {
  if (globals.endpoint !== undefined && !/^https?:\/\/[^/]+/.test(globals.endpoint)) {
    throw new UsageError(`--endpoint must be an http(s) URL, got ${JSON.stringify(globals.endpoint)}`)
  }
  const effectiveEnv = globals.endpoint
    ? { ...env, AWS_ENDPOINT_URL: globals.endpoint, AWS_ENDPOINT_URL_S3: globals.endpoint }
    : env
  const endpoint = customS3Endpoint(effectiveEnv)
  const local = endpoint !== undefined && isLoopback(endpoint)
  const bucket = nonEmpty(globals.bucket) ?? nonEmpty(env['AGEGENDER_BUCKET']) ?? (local ? LOCAL_BUCKET : undefined)
  if (bucket === undefined) {
    throw new UsageError(
      'which bucket? Pass --bucket NAME or set AGEGENDER_BUCKET (for the local system: source .local/env.sh)'
    )
  }
  // On this machine with no credentials configured: the local system's (LocalStack takes any).
  const noCredentials = !nonEmpty(env['AWS_ACCESS_KEY_ID']) && !nonEmpty(env['AWS_PROFILE'])
  const saved =
    local && noCredentials
      ? readLocalCredentials(resolve(cwd, nonEmpty(env['AGEGENDER_DATA_DIR']) ?? '.local'))
      : undefined
  const client = new S3Client({
    ...s3ClientConfig(effectiveEnv),
    // An explicit endpoint beats whatever the SDK would read from the process environment.
    ...(globals.endpoint ? { endpoint: globals.endpoint } : {}),
    ...(saved ? { credentials: { ...saved } } : {}),
  })
  const store = new S3Store({ bucket, client })
  return {
    bucket,
    endpoint,
    client,
    store,
    uri: (key) => `s3://${bucket}/${key}`,
    async localUrl(key) {
      if (!local || !endpoint) return undefined
      const credentials = (await client.config.credentials()) as S3Credentials
      return presignGetUrl(endpoint, bucket, key, credentials, { region: await client.config.region() })
    },
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
