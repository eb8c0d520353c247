/**
 * Signature Version 4 for the embedded S3 server: checks that a request was signed with the server's own
 * credentials, the way S3 does, and presigns GET URLs that a browser can open.
 *
 * The check re-signs what the client says it signed (its method, raw path, query, the headers named in
 * `SignedHeaders`, its `x-amz-date` and declared payload hash) with `@smithy/signature-v4`, the signer the AWS
 * SDK itself uses, and compares the two signatures in constant time. The access key, the credential scope's
 * date and service, and a clock skew of at most 15 minutes (S3's rule) are checked as well.
 *
 * Not checked: that the body matches the payload hash the client declared (S3 does; here the request would
 * have to be captured on the loopback interface and replayed within 15 minutes to exploit it).
 * @module
 */
import { SignatureV4 } from '@smithy/signature-v4'
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import type { IncomingHttpHeaders } from 'node:http'
import { join } from 'node:path'

export interface S3Credentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
}

/** What a request needs for its signature to be checked. */
export interface SignedRequest {
  readonly method: string
  /** Raw request target: path and query, as sent (percent-encoded). */
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

/** Why a request is refused: an S3 error code and a message meant for a person. */
export interface AuthFailure {
  readonly code:
    | 'AccessDenied'
    | 'SignatureDoesNotMatch'
    | 'InvalidAccessKeyId'
    | 'RequestTimeTooSkewed'
    | 'AuthorizationHeaderMalformed'
  readonly message: string
}

/** S3's limit on the difference between the request's time and the server's. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000
const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'
const CONTENT_SHA256 = 'x-amz-content-sha256'

/** node:crypto in the shape `@smithy/signature-v4` hashes with (a sha256, or an HMAC-sha256 given a key). */
class NodeSha256 {
  private readonly hash: Hash | Hmac
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret))
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBytes(data))
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()))
  }
}

const toBytes = (data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof data === 'string'
    ? data
    : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data)

const signer = (credentials: S3Credentials, region: string) =>
  new SignatureV4({
    credentials,
    region,
    service: 's3',
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: false,
  })

/**
 * Checks a request's SigV4 signature (Authorization header, or presigned query parameters).
 * @returns `undefined` when the request is signed with `credentials`, else why not.
 */
export async function checkSignature(
  request: SignedRequest,
  credentials: S3Credentials,
  now: Date = new Date()
): Promise<AuthFailure | undefined> {
  const { path, query } = splitUrl(request.url)
  const authorization = header(request.headers, 'authorization')
  if (authorization !== undefined) return checkHeaderSignature(request, path, query, authorization, credentials, now)
  if (query['X-Amz-Signature'] !== undefined) return checkQuerySignature(request, path, query, credentials, now)
  return {
    code: 'AccessDenied',
    message:
      'this S3 server accepts only requests signed (SigV4) with its credentials: `source .local/env.sh` and use an AWS SDK or the aws CLI',
  }
}

async function checkHeaderSignature(
  request: SignedRequest,
  path: string,
  query: Record<string, string>,
  authorization: string,
  credentials: S3Credentials,
  now: Date
): Promise<AuthFailure | undefined> {
  const match = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(
    authorization.trim()
  )
  if (!match) {
    return {
      code: 'AuthorizationHeaderMalformed',
      message: 'expected an AWS4-HMAC-SHA256 Authorization header (Credential, SignedHeaders, Signature)',
    }
  }
  const [, credential, signedList, signature] = match as unknown as [string, string, string, string]
  const amzDate = header(request.headers, 'x-amz-date')
  const payloadHash = header(request.headers, CONTENT_SHA256)
  if (amzDate === undefined || payloadHash === undefined) {
    return { code: 'AccessDenied', message: `a signed request needs the x-amz-date and ${CONTENT_SHA256} headers` }
  }
  const scope = checkScope(credential, amzDate, credentials)
  if ('code' in scope) return scope
  const skew = Math.abs(now.getTime() - scope.date.getTime())
  if (skew > MAX_CLOCK_SKEW_MS) {
    return {
      code: 'RequestTimeTooSkewed',
      message: `the request's x-amz-date ${amzDate} is more than 15 minutes from the server's clock`,
    }
  }
  const signed = signedList.split(';')
  if (!signed.includes('host')) return { code: 'AccessDenied', message: 'the host header must be signed' }
  const headers = pickHeaders(request.headers, signed)
  if (headers === undefined) return { code: 'AccessDenied', message: 'a header named in SignedHeaders is missing' }
  const expected = await signer(credentials, scope.region).sign(
    { method: request.method, protocol: 'http:', hostname: headers['host'] ?? '', path, query, headers },
    { signingDate: scope.date, signableHeaders: new Set(signed) }
  )
  const expectedSignature = /Signature=([0-9a-f]{64})$/.exec(String(expected.headers['authorization']))?.[1] ?? ''
  return sameSignature(expectedSignature, signature) ? undefined : mismatch()
}

async function checkQuerySignature(
  request: SignedRequest,
  path: string,
  query: Record<string, string>,
  credentials: S3Credentials,
  now: Date
): Promise<AuthFailure | undefined> {
  const {
    'X-Amz-Algorithm': algorithm,
    'X-Amz-Credential': credential,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': expiresText,
    'X-Amz-SignedHeaders': signedList,
    'X-Amz-Signature': signature,
    ...rest
  } = query
  if (algorithm !== 'AWS4-HMAC-SHA256' || !credential || !amzDate || !expiresText || !signedList || !signature) {
    return {
      code: 'AccessDenied',
      message:
        'a presigned URL needs X-Amz-Algorithm=AWS4-HMAC-SHA256, X-Amz-Credential, X-Amz-Date, X-Amz-Expires and X-Amz-SignedHeaders',
    }
  }
  const scope = checkScope(credential, amzDate, credentials)
  if ('code' in scope) return scope
  const expiresIn = Number(expiresText)
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_PRESIGNED_SECONDS) {
    return { code: 'AccessDenied', message: 'X-Amz-Expires must be a whole number of seconds, at most a week' }
  }
  if (now.getTime() > scope.date.getTime() + expiresIn * 1000)
    return { code: 'AccessDenied', message: 'the presigned URL has expired' }
  if (scope.date.getTime() - now.getTime() > MAX_CLOCK_SKEW_MS) {
    return { code: 'RequestTimeTooSkewed', message: `the URL's X-Amz-Date ${amzDate} is in the future` }
  }
  const signed = signedList.split(';')
  if (!signed.includes('host')) return { code: 'AccessDenied', message: 'the host header must be signed' }
  const headers = pickHeaders(request.headers, signed)
  if (headers === undefined)
    return { code: 'AccessDenied', message: 'a header named in X-Amz-SignedHeaders is missing' }
  // Presigned URLs leave the payload unsigned (S3's rule), whatever hash a header claims.
  const expected = await presignRequest(
    { method: request.method, hostname: headers['host'] ?? '', path, query: rest, headers },
    credentials,
    { region: scope.region, signingDate: scope.date, expiresIn, signed }
  )
  return sameSignature(expected['X-Amz-Signature'] ?? '', signature) ? undefined : mismatch()
}

/**
 * A presigned `GET` URL for an object: opens in a browser for `expiresIn` seconds.
 * @example
 * presignGetUrl('http://127.0.0.1:4568', 'agegender', 'runs/r1/report.html', credentials)
 */
export async function presignGetUrl(
  endpoint: string,
  bucket: string,
  key: string,
  credentials: S3Credentials,
  options: { expiresIn?: number; region?: string; now?: Date } = {}
): Promise<string> {
  const url = new URL(endpoint)
  const path = `${url.pathname.replace(/\/+$/, '')}/${bucket}/${key.split('/').map(encodeRfc3986).join('/')}`
  const query = await presignRequest(
    { method: 'GET', hostname: url.host, path, query: {}, headers: { host: url.host } },
    credentials,
    {
      region: options.region ?? 'us-east-1',
      signingDate: options.now ?? new Date(),
      expiresIn: options.expiresIn ?? 3600,
      signed: ['host'],
    }
  )
  const search = Object.entries(query)
    .map(([k, v]) => `${encodeRfc3986(k)}=${encodeRfc3986(v)}`)
    .join('&')
  return `${url.origin}${path}?${search}`
}

async function presignRequest(
  request: {
    method: string
    hostname: string
    path: string
    query: Record<string, string>
    headers: Record<string, string>
  },
  credentials: S3Credentials,
  options: { region: string; signingDate: Date; expiresIn: number; signed: readonly string[] }
): Promise<Record<string, string>> {
  const unsigned = new Set([CONTENT_SHA256])
  const presigned = await signer(credentials, options.region).presign(
    { ...request, protocol: 'http:', headers: { ...request.headers, [CONTENT_SHA256]: UNSIGNED_PAYLOAD } },
    {
      signingDate: options.signingDate,
      expiresIn: options.expiresIn,
      signableHeaders: new Set(options.signed),
      unsignableHeaders: unsigned,
      unhoistableHeaders: unsigned,
    }
  )
  return presigned.query as Record<string, string>
}

/** `AKID/yyyymmdd/region/s3/aws4_request`, against the server's key and the request's date. */
function checkScope(
  credential: string,
  amzDate: string,
  credentials: S3Credentials
): AuthFailure | { region: string; date: Date } {
  const [accessKeyId, day, region, service, terminator, ...extra] = credential.split('/')
  if (!accessKeyId || !day || !region || service !== 's3' || terminator !== 'aws4_request' || extra.length > 0) {
    return {
      code: 'AuthorizationHeaderMalformed',
      message: `the credential scope ${credential} is not <key>/<yyyymmdd>/<region>/s3/aws4_request`,
    }
  }
  if (accessKeyId !== credentials.accessKeyId) {
    return {
      code: 'InvalidAccessKeyId',
      message: `unknown access key ${accessKeyId}: use the credentials in .local/env.sh`,
    }
  }
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)
  if (!m)
    return {
      code: 'AccessDenied',
      message: `x-amz-date ${amzDate} is not in the ISO 8601 basic format yyyymmddThhmmssZ`,
    }
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!))
  if (day !== amzDate.slice(0, 8))
    return { code: 'AuthorizationHeaderMalformed', message: 'the credential scope date differs from x-amz-date' }
  return { region, date }
}

function splitUrl(url: string): { path: string; query: Record<string, string> } {
  const at = url.indexOf('?')
  const path = at === -1 ? url : url.slice(0, at)
  const query: Record<string, string> = {}
  if (at !== -1) {
    for (const pair of url.slice(at + 1).split('&')) {
      if (pair === '') continue
      const eq = pair.indexOf('=')
      const name = decodeLoose(eq === -1 ? pair : pair.slice(0, eq))
      query[name] = decodeLoose(eq === -1 ? '' : pair.slice(eq + 1))
    }
  }
  return { path, query }
}

/** The named headers as Node received them, or `undefined` when one is absent. */
function pickHeaders(headers: IncomingHttpHeaders, names: readonly string[]): Record<string, string> | undefined {
  const out: Record<string, string> = {}
  for (const name of names) {
    const value = header(headers, name)
    if (value === undefined) return undefined
    out[name] = value
  }
  return out
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value.join(',') : value
}

function sameSignature(expected: string, given: string): boolean {
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b)
}

const mismatch = (): AuthFailure => ({
  code: 'SignatureDoesNotMatch',
  message: 'the request signature does not match: sign with the credentials in .local/env.sh',
})

function decodeLoose(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves `!'()*`). */
function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Where the local system keeps its S3 credentials, in its data folder (owner-only), across restarts. */
export const CREDENTIALS_FILE = 's3-credentials.json'

/** The credentials saved in `dataDir`, or `undefined` when there are none (no local system ever ran there). */
export function readLocalCredentials(dataDir: string): S3Credentials | undefined {
  try {
    const saved = JSON.parse(readFileSync(join(dataDir, CREDENTIALS_FILE), 'utf8')) as Partial<S3Credentials>
    if (typeof saved.accessKeyId === 'string' && typeof saved.secretAccessKey === 'string') {
      return { accessKeyId: saved.accessKeyId, secretAccessKey: saved.secretAccessKey }
    }
  } catch {
    // absent or unreadable: none
  }
  return undefined
}

/** The credentials saved in `dataDir`, else `create()`'s, saved there readable by the owner only. */
export async function loadOrCreateCredentials(dataDir: string, create: () => S3Credentials): Promise<S3Credentials> {
  const saved = readLocalCredentials(dataDir)
  if (saved) return saved
  const fresh = create()
  await writeFile(join(dataDir, CREDENTIALS_FILE), `${JSON.stringify(fresh, null, 2)}\n`, { mode: 0o600 })
  return fresh
}
