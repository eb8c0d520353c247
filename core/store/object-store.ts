/**
 * The storage interface every part of the pipeline writes through: a folder on disk implements it for
 * local runs, S3 (AWS, LocalStack or the embedded server) implements it everywhere else.
 *
 * Keys are `/`-separated relative paths (`runs/<runId>/metrics.json`), never starting with `/`.
 * @module
 */
import type { Readable } from 'node:stream'

export interface StoredObject {
  readonly key: string
  readonly size: number
  readonly lastModified: Date
}

export type Body = Uint8Array | string | Readable

export interface PutOptions {
  /** MIME type stored with the object. @default - `application/octet-stream` */
  readonly contentType?: string
}

export interface ObjectStore {
  /** Where the store points, for humans: `s3://bucket` or `file:///abs/path`. */
  readonly location: string
  /** The whole object, or `undefined` if the key does not exist. */
  get(key: string): Promise<Uint8Array | undefined>
  /** A stream of the object, or `undefined` if the key does not exist. */
  getStream(key: string): Promise<Readable | undefined>
  put(key: string, body: Body, options?: PutOptions): Promise<void>
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<StoredObject[]>
  delete(key: string): Promise<void>
}

/** Reads and parses a JSON object; `undefined` if absent. */
export async function getJson<T = unknown>(store: ObjectStore, key: string): Promise<T | undefined> {
  const bytes = await store.get(key)
  return bytes === undefined ? undefined : (JSON.parse(Buffer.from(bytes).toString('utf8')) as T)
}

export async function putJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await store.put(key, JSON.stringify(value, null, 2) + '\n', { contentType: 'application/json' })
}
