/**
 * An S3-compatible server inside this process (s3rver), for running the whole pipeline on one machine and for
 * tests: the same S3 code talks to it as to AWS, through `AWS_ENDPOINT_URL_S3` (see `core/store/s3-config.ts`).
 *
 * Data lives in `directory`, so a restart loses nothing. Object-created notifications are forwarded as standard
 * S3 event records, normalized from s3rver's approximation of them:
 * - the key is URL-encoded the way S3 does it (space → `+`), where s3rver sends it raw;
 * - `eTag` is filled in for Copy events (s3rver omits it) from the stored object;
 * - `sequencer` increases strictly per server (s3rver uses the millisecond clock, so writes within one
 *   millisecond would share one), and the bucket ARN is `arn:aws:s3:::bucket` (s3rver writes `: : :`);
 * - there is never a `versionId` (s3rver has no versioning), so consumers fall back to the ETag.
 *
 * One s3rver bug is patched: it builds ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node ≥ 17)
 * lacks, so every truncated V2 listing (over 1000 keys, or MaxKeys) failed with InternalError. V2 listings are
 * served through s3rver's V1 (marker) code path with tokens of our own.
 *
 * Conditional requests, which s3rver ignores, are added by {@link conditionalRequests}: PUT with `If-None-Match: *`
 * or `If-Match`, and GET/HEAD with `If-Match`, answer 412 PreconditionFailed as S3 does.
 *
 * Nothing is accepted without credentials (see {@link guardRequests} and `s3-auth.ts`): every request must be
 * SigV4-signed with this server's secret (random unless given; `env` holds it with the endpoint), browser form
 * POSTs and requests from web pages (an `Origin` header, CORS preflights) are refused, and a key or upload id
 * that would leave the bucket's folder (`..`) is refused with 400 before it reaches the filesystem
 * ({@link confineKeys}). s3rver itself verifies no V4 signature at all.
 * @module
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3'
import type { S3EventRecord } from 'aws-lambda'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream, fstat as fstatCallback } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import type { IncomingHttpHeaders } from 'node:http'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import S3rver from 's3rver'
import { checkSignature, type S3Credentials } from './s3-auth.js'

const fstat = promisify(fstatCallback)

/** The only access key id s3rver knows; the secret is this server's own (see {@link newS3Credentials}). */
export const EMBEDDED_S3_ACCESS_KEY_ID = 'S3RVER'

/** Credentials with a fresh random secret (s3rver's one access key id). */
export function newS3Credentials(): S3Credentials {
  return { accessKeyId: EMBEDDED_S3_ACCESS_KEY_ID, secretAccessKey: randomBytes(24).toString('base64url') }
}

/** s3rver's error class: thrown from a middleware, it becomes an S3 XML error with the code's HTTP status. */
const S3Error = createRequire(import.meta.url)('s3rver/lib/models/error.js') as new (
  code: string,
  message: string
) => Error

/** The one method of s3rver's (untyped, internal) filesystem store used here. */
interface S3rverObject {
  bucket: string
  key: string
  content: Buffer | NodeJS.ReadableStream
  metadata: Record<string, string>
}

interface S3rverStore {
  existsObject(bucket: string, key: string): Promise<boolean>
  getBucketPath(bucket: string): string
  getMetadata(bucket: string, key: string): Promise<{ etag: string }>
  getResourcePath(bucket: string, key: string | undefined, resource: string): string
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<S3rverReadObject | null>
}

/** What s3rver's `getObject` returns: the metadata it answers with and a stream of the file it opened. */
interface S3rverReadObject {
  metadata: Record<string, string | number>
  content?: (Readable & { fd?: number | null }) | null
  range?: unknown
}

/**
 * s3rver writes an object over the old file in place (and answers before a Buffer body is flushed), so a reader
 * polling `status.json` while a job rewrites it gets a body shorter than its Content-Length: the SDK fails with
 * `aborted`. Writing to a temporary file and renaming it makes the object switch at once, as on S3.
 */
function makeWritesAtomic(store: S3rverStore): void {
  store.putObject = async (object) => {
    const target = store.getResourcePath(object.bucket, object.key, 'object')
    await mkdir(dirname(target), { recursive: true })
    const temp = `${target}.~${process.pid}-${randomBytes(6).toString('hex')}`
    const md5 = createHash('md5')
    let size = 0
    const count = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        md5.update(chunk)
        size += chunk.length
        callback(null, chunk)
      },
    })
    const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : (object.content as Readable)
    try {
      await pipeline(source, count, createWriteStream(temp))
      await rename(temp, target)
    } catch (err) {
      await rm(temp, { force: true })
      throw err
    }
    const digest = md5.digest('hex')
    await store.putMetadata(object.bucket, object.key, object.metadata, digest)
    return { size, md5: digest }
  }
  // s3rver writes metadata.json and the .md5 file in place too, so a concurrent read could parse a torn file: it
  // writes them here under a temporary key in the same folder, and they are renamed over the real ones.
  const putMetadata = store.putMetadata.bind(store)
  store.putMetadata = async (bucket, key, metadata, md5) => {
    const temp = `${key}.~${process.pid}-${randomBytes(6).toString('hex')}`
    await putMetadata(bucket, temp, metadata, md5)
    for (const resource of md5 ? ['object.md5', 'metadata.json'] : ['metadata.json']) {
      await rename(store.getResourcePath(bucket, temp, resource), store.getResourcePath(bucket, key, resource))
    }
  }
  // s3rver's read stats the file for Content-Length, then opens the path again: a rename in between (the writes
  // above) streams the new file against the old length, and the client fails with `aborted`. So the file it
  // opened is checked against the length it announced, and on a mismatch the read starts over (the rename is done
  // by then); after five tries the read goes out as it is.
  const getObject = store.getObject.bind(store)
  store.getObject = async (bucket, key, options) => {
    for (let attempt = 1; ; attempt++) {
      const object = await getObject(bucket, key, options)
      const stream = object?.content
      if (!object || !stream || object.range !== undefined || typeof stream.fd !== 'number' || attempt === 5) {
        return object
      }
      const { size } = await fstat(stream.fd)
      if (size === Number(object.metadata['content-length'])) return object
      stream.destroy()
    }
  }
}

export interface EmbeddedS3Options {
  /** Folder holding buckets and objects; created if missing. */
  readonly directory: string
  /** Created if missing. */
  readonly bucket: string
  /** TCP port on 127.0.0.1; 0 picks a free one. @default 0 */
  readonly port?: number
  /**
   * Called for every object created (Put, multipart completion, Post, Copy) in any bucket, once the object is
   * stored. Called while s3rver finishes the request, so start work and return; a throw or rejection is
   * passed to `onError` and never fails the upload.
   */
  readonly onObjectCreated?: (record: S3EventRecord) => void | Promise<void>
  /** @default - logs to stderr */
  readonly onError?: (err: unknown, record: S3EventRecord | undefined) => void
  /** Print s3rver's request log. @default false */
  readonly verbose?: boolean
  /** What requests must be signed with. @default - a random secret ({@link newS3Credentials}) */
  readonly credentials?: S3Credentials
}

export interface EmbeddedS3 {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string
  readonly port: number
  readonly bucket: string
  readonly credentials: S3Credentials
  /** Variables that point the AWS SDK (in this process or a child) at this server. */
  readonly env: Readonly<Record<string, string>>
  /** `new S3Client(clientConfig)` talks to this server without touching `process.env`. */
  readonly clientConfig: S3ClientConfig
  stop(): Promise<void>
}

/**
 * Starts s3rver on 127.0.0.1.
 * @example
 * const s3 = await startEmbeddedS3({ directory: '.local/s3', bucket: 'agegender', onObjectCreated: startRun })
 * Object.assign(process.env, s3.env)
 * // ... later
 * await s3.stop()
 */
export async function startEmbeddedS3(options: EmbeddedS3Options): Promise<EmbeddedS3> {
  await mkdir(options.directory, { recursive: true })
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    silent: !options.verbose,
    directory: options.directory,
    // Path-style only: with vhost on, any Host that is not an IP or `localhost` (a machine name, say) would be
    // taken for a bucket name.
    vhostBuckets: false,
    configureBuckets: [{ name: options.bucket }],
  })
  const credentials = options.credentials ?? newS3Credentials()
  // Just before the router (last), so they see the request before s3rver and the plain body after it.
  server.middleware.splice(server.middleware.length - 1, 0, guardRequests(credentials), listV2ThroughMarkers)
  const onError =
    options.onError ??
    ((err: unknown, record: S3EventRecord | undefined) =>
      console.error(`embedded S3: object-created handler failed for ${record?.s3.object.key ?? '?'}:`, err))
  const nextSequencer = sequencerClock()
  // s3rver's filesystem store: used to read the ETag that Copy events lack.
  const store = (server as unknown as { store: S3rverStore }).store
  makeWritesAtomic(store)
  server.middleware.splice(server.middleware.length - 1, 0, conditionalRequests(store))
  confineKeys(store)

  const deliver = (record: S3EventRecord) => {
    try {
      Promise.resolve(options.onObjectCreated?.(record)).catch((err: unknown) => onError(err, record))
    } catch (err) {
      onError(err, record)
    }
  }

  server.on('event', (event) => {
    for (const raw of event.Records) {
      if (!raw.eventName.startsWith('ObjectCreated:')) continue
      const record = normalizeRecord(raw, nextSequencer())
      if (raw.s3.object.eTag !== undefined) {
        deliver(record)
        continue
      }
      store.getMetadata(raw.s3.bucket.name, raw.s3.object.key).then(
        (meta) => {
          record.s3.object.eTag = (JSON.parse(meta.etag) as string).replace(/"/g, '')
          deliver(record)
        },
        // Deleted again before we looked: S3 would have sent the event, but there is nothing left to process.
        (err: unknown) => onError(err, record)
      )
    }
  })

  const address = await server.run()
  const endpoint = `http://127.0.0.1:${address.port}`
  return {
    endpoint,
    port: address.port,
    bucket: options.bucket,
    credentials,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
    },
    // The settings s3ClientConfig() derives from `env`, spelled out (see core/store/s3-config.ts).
    clientConfig: {
      endpoint,
      region: 'us-east-1',
      credentials: { ...credentials },
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    },
    stop: () => server.close(),
  }
}

/**
 * Refuses, before s3rver sees them:
 * - requests from web pages: any `Origin` header and every CORS preflight (`OPTIONS`): no page of ours talks
 *   to this server, so no origin is allowed (403);
 * - browser form uploads (`POST` with a form body, or a `POST` that is none of the S3 API's: multipart uploads
 *   and multi-object delete) (405);
 * - keys with `.` or `..` segments, a backslash or a NUL byte, and upload ids other than s3rver's hex (400);
 * - every request not SigV4-signed with `credentials` (403, see `s3-auth.ts`).
 */
export function guardRequests(credentials: S3Credentials) {
  return async function guard(context: S3rver.Context, next: () => Promise<void>): Promise<void> {
    const ctx = context as S3rver.Context & KoaRequestView
    if (ctx.method === 'OPTIONS' || ctx.get('origin') !== '') {
      throw new S3Error('AccessDenied', 'requests from web pages are refused: this S3 server allows no origin (CORS)')
    }
    if (ctx.method === 'POST' && (isFormBody(ctx.get('content-type')) || !isApiPost(ctx.query))) {
      throw new S3Error(
        'MethodNotAllowed',
        'browser form uploads (POST Object) are refused: use PUT, signed with the credentials in .local/env.sh'
      )
    }
    const unsafe = unsafeTarget(ctx.path, ctx.query, ctx.get('x-amz-copy-source'))
    if (unsafe) throw new S3Error('InvalidArgument', unsafe)
    const failure = await checkSignature({ method: ctx.method, url: ctx.url, headers: ctx.headers }, credentials)
    if (failure) throw new S3Error(failure.code, failure.message)
    return next()
  }
}

/** The parts of Koa's context used here, which s3rver's types leave out. */
interface KoaRequestView {
  get(field: string): string
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

const isFormBody = (contentType: string) =>
  /^\s*(multipart\/form-data|application\/x-www-form-urlencoded)\b/i.test(contentType)
const isApiPost = (query: Record<string, unknown>) => 'uploads' in query || 'uploadId' in query || 'delete' in query

/** Why a request's key, copy source or upload id is not confined to its bucket's folder, if it is not. */
export function unsafeTarget(path: string, query: Record<string, unknown>, copySource: string): string | undefined {
  const keys: string[] = []
  try {
    keys.push(decodeURIComponent(path).split('/').slice(2).join('/'))
    if (copySource !== '') keys.push(decodeURIComponent(copySource.split('?')[0]!).replace(/^\/?[^/]*\/?/, ''))
  } catch {
    return 'the path is not valid percent-encoding'
  }
  for (const key of keys) {
    const why = unsafeKey(key)
    if (why) return why
  }
  const uploadId = query['uploadId']
  if (uploadId !== undefined && !(typeof uploadId === 'string' && /^[0-9a-f]{1,64}$/.test(uploadId))) {
    return 'uploadId must be the hexadecimal id this server handed out'
  }
  return undefined
}

/** Why a key could leave its bucket's folder on disk, if it could. */
export function unsafeKey(key: string): string | undefined {
  if (key.split('/').some((segment) => segment === '..' || segment === '.'))
    return `key ${JSON.stringify(key)} has a . or .. segment`
  if (/[\\\0]/.test(key)) return `key ${JSON.stringify(key)} has a backslash or a NUL byte`
  return undefined
}

/**
 * The filesystem store's last line of defence, for keys that come from a request body (multi-object delete)
 * or anything {@link guardRequests} missed: a key path that resolves outside its bucket's folder throws 400.
 */
export function confineKeys(store: S3rverStore): void {
  const resourcePath = store.getResourcePath.bind(store)
  store.getResourcePath = (bucket, key, resource) => {
    const why = key === undefined ? undefined : unsafeKey(key)
    const path = resourcePath(bucket, key, resource)
    const root = store.getBucketPath(bucket)
    if (why || !(path === root || path.startsWith(`${root}/`)))
      throw new S3Error('InvalidArgument', why ?? `key ${JSON.stringify(key)} leaves the bucket`)
    return path
  }
}

/** s3rver's record in the AWS shape (see the module header for what changes). */
export function normalizeRecord(raw: S3rver.EventRecord, sequencer: string): S3EventRecord {
  const { name } = raw.s3.bucket
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: raw.awsRegion,
    eventTime: raw.eventTime,
    eventName: raw.eventName,
    userIdentity: raw.userIdentity,
    requestParameters: raw.requestParameters,
    responseElements: {
      'x-amz-request-id': raw.responseElements['x-amz-request-id'] ?? '',
      'x-amz-id-2': raw.responseElements['x-amz-id-2'] ?? '',
    },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: raw.s3.configurationId,
      bucket: { name, ownerIdentity: raw.s3.bucket.ownerIdentity, arn: `arn:aws:s3:::${name}` },
      object: {
        key: encodeEventKey(raw.s3.object.key),
        size: raw.s3.object.size ?? 0,
        eTag: raw.s3.object.eTag ?? '',
        sequencer,
      },
    },
  }
}

/**
 * Encodes a key as S3 does in event notifications: form encoding (space → `+`, `+` → `%2B`) that keeps `/`.
 * The inverse is `decodeURIComponent(key.replace(/\+/g, ' '))`.
 */
export function encodeEventKey(key: string): string {
  return encodeURIComponent(key)
    .replace(/%2F/g, '/')
    .replace(/%20/g, '+')
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/**
 * Rewrites a ListObjectsV2 request as V1 (`continuation-token`/`start-after` → `marker`) and the V1 answer back
 * into V2 (`NextContinuationToken` = the last key, base64url-encoded; `KeyCount`; no owners unless asked).
 */
async function listV2ThroughMarkers(ctx: S3rver.Context, next: () => Promise<void>): Promise<void> {
  const q = ctx.query
  if (ctx.method !== 'GET' || q['list-type'] !== '2' || !/^\/[^/]+\/?$/.test(ctx.path)) return next()
  const token = typeof q['continuation-token'] === 'string' ? q['continuation-token'] : undefined
  const startAfter = typeof q['start-after'] === 'string' ? q['start-after'] : undefined
  const fetchOwner = q['fetch-owner'] === 'true'
  const { 'list-type': _v, 'continuation-token': _t, 'start-after': _s, 'fetch-owner': _o, ...v1 } = q
  const marker = token !== undefined ? Buffer.from(token, 'base64url').toString('utf8') : startAfter
  ctx.query = marker ? { ...v1, marker } : v1
  await next()

  const result = (ctx.body as { ListBucketResult?: Record<string, unknown> } | undefined)?.ListBucketResult
  if (!result) return
  const contents = (result['Contents'] ?? []) as { Key: string; Owner?: unknown }[]
  const prefixes = (result['CommonPrefixes'] ?? []) as unknown[]
  const last = contents.at(-1)?.Key
  delete result['Marker']
  delete result['NextMarker']
  if (!fetchOwner) for (const c of contents) delete c.Owner
  Object.assign(result, {
    ...(token !== undefined ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}),
    ...(result['IsTruncated'] && last ? { NextContinuationToken: toToken(last) } : {}),
    KeyCount: contents.length + prefixes.length,
  })
}

const toToken = (key: string) => Buffer.from(key).toString('base64url')

/** Upper-case hex, 16 digits, strictly increasing: later writes compare greater, as S3 sequencers do. */
function sequencerClock(): () => string {
  let last = 0n
  return () => {
    const now = BigInt(Date.now()) * 1000n
    last = now > last ? now : last + 1n
    return last.toString(16).toUpperCase().padStart(16, '0')
  }
}

// ---------------------------------------------------------------------------------------------------------
// Conditional requests (S3's If-None-Match / If-Match on PUT, If-Match on GET), which s3rver lacks.
// ---------------------------------------------------------------------------------------------------------

/**
 * A middleware that evaluates S3 preconditions before s3rver handles the request:
 * - PUT object with `If-None-Match: *`: 412 if the key exists;
 * - PUT object with `If-Match: <etag>`: 412 if the key is missing or its ETag differs;
 * - GET/HEAD object with `If-Match: <etag>`: 412 if its ETag differs (a missing key stays a 404).
 *
 * Conditional PUTs of one key are serialized (check and write under one in-process lock), so of two racing
 * `If-None-Match: *` writes exactly one succeeds, as on S3. Multipart parts and copies pass through unchecked.
 */
export function conditionalRequests(store: Pick<S3rverStore, 'existsObject' | 'getMetadata'>) {
  const locks = new Map<string, Promise<void>>()
  const withLock = async (name: string, fn: () => Promise<void>) => {
    const before = locks.get(name) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((r) => (release = r))
    const chained = before.then(() => mine)
    locks.set(name, chained)
    await before
    try {
      await fn()
    } finally {
      release()
      if (locks.get(name) === chained) locks.delete(name)
    }
  }
  const etagOf = async (bucket: string, key: string): Promise<string | undefined> => {
    if (!(await store.existsObject(bucket, key))) return undefined
    const meta = await store.getMetadata(bucket, key)
    return (JSON.parse(meta.etag) as string).replace(/"/g, '')
  }
  return async function conditional(ctx: S3rver.Context, next: () => Promise<void>): Promise<void> {
    const match = /^\/([^/]+)\/(.+)$/.exec(ctx.path)
    const ifMatch = headerOf(ctx, 'if-match')
    const ifNoneMatch = headerOf(ctx, 'if-none-match')
    const isPut =
      ctx.method === 'PUT' && ctx.query['uploadId'] === undefined && headerOf(ctx, 'x-amz-copy-source') === undefined
    const isRead = ctx.method === 'GET' || ctx.method === 'HEAD'
    const checked = (isPut && (ifMatch !== undefined || ifNoneMatch !== undefined)) || (isRead && ifMatch !== undefined)
    if (!match || !checked) return next()
    const bucket = decodeURIComponent(match[1]!)
    const key = decodeURIComponent(match[2]!)
    const evaluate = async () => {
      const etag = await etagOf(bucket, key)
      const holds = isPut
        ? (ifNoneMatch !== '*' || etag === undefined) && (ifMatch === undefined || etag === unquote(ifMatch))
        : etag === undefined || etag === unquote(ifMatch!)
      if (holds) return next()
      ctx.status = 412
      ctx.type = 'application/xml'
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
        '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
        `<Condition>${ifNoneMatch !== undefined && isPut ? 'If-None-Match' : 'If-Match'}</Condition></Error>`
    }
    if (isPut) await withLock(`${bucket}/${key}`, evaluate)
    else await evaluate()
  }
}

function headerOf(ctx: S3rver.Context, name: string): string | undefined {
  const value = ctx.get(name)
  return value === '' ? undefined : value
}

const unquote = (etag: string) => etag.replace(/"/g, '')
