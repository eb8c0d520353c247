/**
 * The storage interface every part of the pipeline writes through: a folder on disk implements it for
 * local runs, S3 (AWS, LocalStack or the embedded server) implements it everywhere else.
 *
 * Keys are `/`-separated relative paths (`runs/<runId>/metrics.json`), never starting with `/`.
 * @module
 */
import type { Readable } from 'node:stream'
import type { z } from 'zod'
import { describeIssues } from '../zod-issues.js'

export interface StoredObject {
  readonly key: string
  readonly size: number
  readonly lastModified: Date
}

export type Body = Uint8Array | string | Readable

export interface PutOptions {
  /** MIME type stored with the object. @default - `application/octet-stream` */
  readonly contentType?: string
  /**
   * `'*'`: write only if no object has this key (S3 `If-None-Match: *`); otherwise the put fails with a
   * {@link PreconditionFailedError} and nothing is written. Needs an in-memory body.
   */
  readonly ifNoneMatch?: '*'
  /**
   * Write only if the object's current ETag is this one (S3 `If-Match`), i.e. nobody replaced it since it was
   * read with `getEntry`; otherwise a {@link PreconditionFailedError}. Needs an in-memory body.
   */
  readonly ifMatch?: string
}

export interface GetOptions {
  /** Read this version of the object (versioned S3 buckets); a store without versions refuses it. */
  readonly versionId?: string
  /** Read only if the object's ETag is this one, else a {@link PreconditionFailedError}. */
  readonly ifMatch?: string
}

/** An object's bytes with the ETag to pass as `ifMatch` when writing it back. */
export interface StoredEntry {
  readonly body: Uint8Array
  /** Without the quotes S3 puts around it. */
  readonly etag: string
}

/** A conditional read or write did not hold: the object exists, is missing, or changed since it was read. */
export class PreconditionFailedError extends Error {
  override readonly name = 'PreconditionFailedError'
  constructor(
    readonly key: string,
    condition: string,
    options?: ErrorOptions
  ) {
    super(`precondition failed for ${key} (${condition})`, options)
  }
}

/** The condition of `options` in words, for error messages. */
export function describeCondition(options: { ifNoneMatch?: string; ifMatch?: string; versionId?: string }): string {
  return [
    options.ifNoneMatch ? `If-None-Match: ${options.ifNoneMatch}` : '',
    options.ifMatch ? `If-Match: ${options.ifMatch}` : '',
  ]
    .filter(Boolean)
    .join(', ')
}

export interface ObjectStore {
  /** Where the store points, for humans: `s3://bucket` or `file:///abs/path`. */
  readonly location: string
  /** The whole object, or `undefined` if the key does not exist. */
  get(key: string, options?: GetOptions): Promise<Uint8Array | undefined>
  /** A stream of the object, or `undefined` if the key does not exist. */
  getStream(key: string, options?: GetOptions): Promise<Readable | undefined>
  /** The whole object and its ETag (for a later conditional `put`), or `undefined` if the key does not exist. */
  getEntry(key: string): Promise<StoredEntry | undefined>
  put(key: string, body: Body, options?: PutOptions): Promise<void>
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<StoredObject[]>
  delete(key: string): Promise<void>
}

/** A stored JSON document is not JSON, or not the document its schema describes. */
export class InvalidDocumentError extends Error {
  override readonly name = 'InvalidDocumentError'
  constructor(
    readonly key: string,
    why: string,
    options?: ErrorOptions
  ) {
    super(`${key} is not a valid document: ${why}`, options)
  }
}

/**
 * Reads a JSON document and parses it with `schema`; `undefined` if absent.
 * @throws InvalidDocumentError naming the key and every bad field, when the object is not JSON or not valid.
 * @example const status = await getJson(store, runKeys(runId).status, RunStatus)
 */
export async function getJson<S extends z.ZodType>(
  store: ObjectStore,
  key: string,
  schema: S
): Promise<z.output<S> | undefined> {
  const bytes = await store.get(key)
  if (bytes === undefined) return undefined
  let raw: unknown
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch (err) {
    throw new InvalidDocumentError(key, (err as Error).message, { cause: err })
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) throw new InvalidDocumentError(key, describeIssues(parsed.error, 'document'))
  return parsed.data
}

/** Writes `value` as pretty JSON; `options` may make the write conditional. */
export async function putJson(
  store: ObjectStore,
  key: string,
  value: unknown,
  options: Omit<PutOptions, 'contentType'> = {}
): Promise<void> {
  await store.put(key, `${JSON.stringify(value, null, 2)}\n`, { ...options, contentType: 'application/json' })
}

export interface UpdateJsonOptions {
  /** Attempts before giving up when other writers keep changing the object. @default 10 */
  readonly attempts?: number
  /**
   * Try `change(undefined)` with `If-None-Match: *` before reading anything, and read only when the object
   * exists. For callers without `s3:ListBucket`, to whom S3 answers a read of a missing key with 403, not 404.
   * @default false
   */
  readonly createFirst?: boolean
}

/**
 * Read-modify-write of a JSON object that never loses a concurrent update (optimistic locking): reads the
 * object and its ETag, asks `change` for the new value, and writes it with `If-Match` (or `If-None-Match: *`
 * when absent). When someone else wrote in between, it reads again and asks `change` again.
 * `change` returns `undefined` to leave the object as it is.
 * @returns what was written, or `undefined` when `change` declined.
 * @example
 * await updateJson<Promotion>(store, 'models/latest.json', (current) => (isNewer(mine, current) ? mine : undefined))
 */
export async function updateJson<T>(
  store: ObjectStore,
  key: string,
  change: (current: T | undefined) => T | undefined | Promise<T | undefined>,
  options: UpdateJsonOptions = {}
): Promise<T | undefined> {
  const attempts = options.attempts ?? 10
  if (options.createFirst) {
    const created = await change(undefined)
    if (created === undefined) return undefined
    try {
      await store.put(key, `${JSON.stringify(created, null, 2)}\n`, {
        contentType: 'application/json',
        ifNoneMatch: '*',
      })
      return created
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err
    }
  }
  for (let attempt = 1; ; attempt++) {
    const entry = await store.getEntry(key)
    const current = entry === undefined ? undefined : (JSON.parse(Buffer.from(entry.body).toString('utf8')) as T)
    const next = await change(current)
    if (next === undefined) return undefined
    const condition = entry === undefined ? { ifNoneMatch: '*' as const } : { ifMatch: entry.etag }
    try {
      await store.put(key, `${JSON.stringify(next, null, 2)}\n`, { contentType: 'application/json', ...condition })
      return next
    } catch (err) {
      if (!(err instanceof PreconditionFailedError) || attempt >= attempts) throw err
    }
  }
}
