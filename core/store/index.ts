/**
 * The store API in one import, and `storeFromUri` to open one from a configuration string.
 * @module
 */
import { isAbsolute, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { S3Client } from '@aws-sdk/client-s3'
import { FolderStore } from './folder-store.js'
import type { ObjectStore } from './object-store.js'
import { prefixedStore } from './prefixed-store.js'
import { S3Store } from './s3-store.js'

export * from './object-store.js'
export { FolderStore, InvalidKeyError } from './folder-store.js'
export { S3Store, type S3StoreProps, type ObjectHead } from './s3-store.js'
export { prefixedStore } from './prefixed-store.js'
export { s3ClientConfig, customS3Endpoint } from './s3-config.js'

export interface StoreFromUriOptions {
  /** Client for `s3://` URIs. @default - one configured from the environment */
  readonly s3Client?: S3Client
}

/**
 * Opens the store a URI names:
 * - `s3://bucket` or `s3://bucket/some/prefix` → S3 (a prefix gives a view whose keys are relative to it);
 * - `file:///abs/dir`, `/abs/dir` or `rel/dir` (resolved against the working directory) → a folder.
 * @example
 * const store = storeFromUri(process.env.STORE_URI ?? 's3://my-bucket')
 */
export function storeFromUri(uri: string, options: StoreFromUriOptions = {}): ObjectStore {
  if (uri.trim() === '') throw new Error('store URI is empty')
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(uri)?.[1]?.toLowerCase()
  if (scheme === 's3') {
    const rest = uri.slice('s3://'.length)
    const slash = rest.indexOf('/')
    const bucket = slash < 0 ? rest : rest.slice(0, slash)
    const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+/, '')
    if (!bucket) throw new Error(`store URI ${JSON.stringify(uri)} names no bucket`)
    const store = new S3Store({ bucket, ...(options.s3Client ? { client: options.s3Client } : {}) })
    return prefix === '' ? store : prefixedStore(store, prefix)
  }
  if (scheme === 'file') return new FolderStore(fileURLToPath(uri))
  if (scheme !== undefined) {
    throw new Error(`store URI ${JSON.stringify(uri)}: unsupported scheme ${scheme}:// (use s3:// or file://)`)
  }
  return new FolderStore(isAbsolute(uri) ? uri : resolve(uri))
}
