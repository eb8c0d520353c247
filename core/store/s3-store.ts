/**
 * An ObjectStore over one S3 bucket: AWS, LocalStack or the embedded s3rver, whichever the client's
 * configuration points at (see `s3-config.ts`).
 *
 * Streams and bodies of at least `partSize` go through lib-storage's `Upload` (multipart, parts in parallel,
 * no need to know the length up front); small in-memory bodies use one PutObject.
 * @module
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { Readable } from 'node:stream'
import {
  PreconditionFailedError,
  describeCondition,
  type Body,
  type GetOptions,
  type ObjectStore,
  type PutOptions,
  type StoredEntry,
  type StoredObject,
} from './object-store.js'
import { s3ClientConfig } from './s3-config.js'

const MiB = 1024 * 1024

export interface S3StoreProps {
  readonly bucket: string
  /** @default - a client configured from the environment by `s3ClientConfig()` */
  readonly client?: S3Client
  /**
   * Multipart part size in bytes (S3's minimum is 5 MiB); in-memory bodies this large go in parts too.
   * @default - 8 MiB
   */
  readonly partSize?: number
  /** Parts uploaded at once. @default 4 */
  readonly queueSize?: number
  /** Keys per ListObjectsV2 page. @default - the server's maximum (1000 on S3) */
  readonly listPageSize?: number
}

/** What HEAD tells about an object: enough to name its version. */
export interface ObjectHead {
  readonly size: number
  readonly lastModified: Date
  /** Without the surrounding quotes S3 puts on the header. */
  readonly etag?: string
  /** Only on versioned buckets. */
  readonly versionId?: string
}

export class S3Store implements ObjectStore {
  readonly bucket: string
  readonly client: S3Client
  readonly location: string
  private readonly partSize: number
  private readonly queueSize: number
  private readonly listPageSize: number | undefined

  constructor(props: S3StoreProps) {
    if (!props.bucket) throw new Error('S3Store needs a bucket name')
    this.bucket = props.bucket
    this.client = props.client ?? new S3Client(s3ClientConfig())
    this.location = `s3://${props.bucket}`
    this.partSize = props.partSize ?? 8 * MiB
    this.queueSize = props.queueSize ?? 4
    this.listPageSize = props.listPageSize
  }

  async get(key: string, options?: GetOptions): Promise<Uint8Array | undefined> {
    const out = await this.getObject(key, options)
    return out === undefined ? undefined : await out.Body.transformToByteArray()
  }

  async getStream(key: string, options?: GetOptions): Promise<Readable | undefined> {
    const out = await this.getObject(key, options)
    // In Node the SDK's body is an IncomingMessage (a Readable) mixed with the transformTo* helpers.
    return out?.Body as (Readable & NonNullable<typeof out>['Body']) | undefined
  }

  async getEntry(key: string): Promise<StoredEntry | undefined> {
    const out = await this.getObject(key)
    if (out === undefined) return undefined
    if (!out.ETag) throw new Error(`GetObject ${this.location}/${key} returned no ETag`)
    return { body: await out.Body.transformToByteArray(), etag: out.ETag.replace(/"/g, '') }
  }

  async put(key: string, body: Body, options?: PutOptions): Promise<void> {
    const contentType = options?.contentType ?? 'application/octet-stream'
    const params = { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }
    const size =
      body instanceof Readable ? undefined : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
    const conditional = options?.ifNoneMatch !== undefined || options?.ifMatch !== undefined
    if (conditional) {
      if (size === undefined || size >= this.partSize) {
        throw new Error(`conditional put of ${key}: needs an in-memory body under ${this.partSize} bytes`)
      }
      const condition = {
        ...(options?.ifNoneMatch ? { IfNoneMatch: options.ifNoneMatch } : {}),
        ...(options?.ifMatch ? { IfMatch: quoted(options.ifMatch) } : {}),
      }
      try {
        await this.client.send(new PutObjectCommand({ ...params, ...condition }))
      } catch (err) {
        // 412: the condition did not hold; 409 ConditionalRequestConflict: a concurrent conditional write won
        if (isPreconditionFailure(err))
          throw new PreconditionFailedError(key, describeCondition(options ?? {}), { cause: err })
        throw err
      }
      return
    }
    if (size !== undefined && size < this.partSize) {
      await this.client.send(new PutObjectCommand(params))
      return
    }
    const upload = new Upload({
      client: this.client,
      params,
      partSize: this.partSize,
      queueSize: this.queueSize,
      // A failed upload must not leave billed, invisible parts behind.
      leavePartsOnError: false,
    })
    await upload.done()
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const found: StoredObject[] = []
    let token: string | undefined
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          ContinuationToken: token,
          ...(this.listPageSize ? { MaxKeys: this.listPageSize } : {}),
        })
      )
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue
        found.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) })
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    return found
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }))
  }

  /** Size, ETag and version id of `key`, or `undefined` if it does not exist. */
  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      return {
        size: h.ContentLength ?? 0,
        lastModified: h.LastModified ?? new Date(0),
        ...(h.ETag ? { etag: h.ETag.replace(/"/g, '') } : {}),
        ...(h.VersionId && h.VersionId !== 'null' ? { versionId: h.VersionId } : {}),
      }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  private async getObject(key: string, options?: GetOptions) {
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(options?.versionId ? { VersionId: options.versionId } : {}),
          ...(options?.ifMatch ? { IfMatch: quoted(options.ifMatch) } : {}),
        })
      )
      const { Body } = out
      if (!Body) throw new Error(`GetObject ${this.location}/${key} returned no body`)
      return { ...out, Body }
    } catch (err) {
      if (isNotFound(err)) return undefined
      if (isPreconditionFailure(err))
        throw new PreconditionFailedError(key, describeCondition(options ?? {}), { cause: err })
      throw err
    }
  }
}

const quoted = (etag: string) => (etag.startsWith('"') ? etag : `"${etag}"`)

function isPreconditionFailure(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined
  const status = e?.$metadata?.httpStatusCode
  return (
    e?.name === 'PreconditionFailed' || e?.name === 'ConditionalRequestConflict' || status === 412 || status === 409
  )
}

/** NoSuchKey on GET, NotFound (a bare 404, HEAD has no body) on HEAD. NoSuchBucket stays an error. */
function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined
  if (e?.name === 'NoSuchKey' || e?.name === 'NotFound') return true
  return e?.name !== 'NoSuchBucket' && e?.$metadata?.httpStatusCode === 404
}
