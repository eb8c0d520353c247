/**
 * Where pretrained backbone weights come from: a local path, an `s3://bucket/key` URI or an `https://` URL
 * (plain `http://` only on loopback, for tests), optionally pinned by sha256.
 *
 * URLs are fetched once and cached in a store (the job uses its bucket's `pretrained/` prefix), so every later run
 * reads the cached copy and works without internet access. A pinned digest is checked on every read, cached or
 * not; without one, the digest is reported so it can be pinned.
 * @module
 */
import { readFile } from 'node:fs/promises'
import { sha256Hex } from './split.js'
import { storeFromUri, type ObjectStore } from './store/index.js'

export class PretrainedSourceError extends Error {
  override readonly name = 'PretrainedSourceError'
}

export interface PretrainedSourceOptions {
  /** Expected sha256 (hex) of the file. */
  readonly sha256?: string | undefined
  /** Store that caches downloaded files under `pretrained/`. */
  readonly cache?: ObjectStore | undefined
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch
  /** @default 300 s */
  readonly timeoutMs?: number
  readonly log?: (line: string) => void
  /** Opens `s3://` URIs. @default storeFromUri */
  readonly openStore?: (uri: string) => ObjectStore
}

export interface PretrainedFile {
  readonly bytes: Uint8Array
  readonly sha256: string
  /** `file`, `s3`, `download` or `cache` (a URL served from the cache). */
  readonly from: 'file' | 's3' | 'download' | 'cache'
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** The cache key of a URL: its pinned digest when given, else a digest of the URL itself. */
export function pretrainedCacheKey(url: string, sha256?: string): string {
  const name = new URL(url).pathname.split('/').filter(Boolean).at(-1) ?? 'weights'
  return `pretrained/${sha256 ?? `url-${sha256Hex(new TextEncoder().encode(url)).slice(0, 16)}`}/${name}`
}

export async function readPretrained(source: string, options: PretrainedSourceOptions = {}): Promise<PretrainedFile> {
  const expected = options.sha256?.toLowerCase()
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
    throw new PretrainedSourceError(`pretrained sha256 must be 64 hex digits, got ${JSON.stringify(options.sha256)}`)
  }
  const checked = (bytes: Uint8Array, from: PretrainedFile['from']): PretrainedFile => {
    const sha256 = sha256Hex(bytes)
    if (expected && sha256 !== expected) {
      throw new PretrainedSourceError(`pretrained weights from ${source} have sha256 ${sha256}, expected ${expected}`)
    }
    return { bytes, sha256, from }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source)?.[1]?.toLowerCase()
  if (scheme === undefined || scheme === 'file') {
    const path = scheme === 'file' ? new URL(source) : source
    try {
      return checked(await readFile(path), 'file')
    } catch (err) {
      if (err instanceof PretrainedSourceError) throw err
      throw new PretrainedSourceError(`cannot read pretrained weights ${source}: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }
  if (scheme === 's3') {
    const rest = source.slice('s3://'.length)
    const slash = rest.indexOf('/')
    if (slash <= 0 || slash === rest.length - 1) throw new PretrainedSourceError(`${source} must be s3://bucket/key`)
    const store = (options.openStore ?? storeFromUri)(`s3://${rest.slice(0, slash)}`)
    const bytes = await store.get(rest.slice(slash + 1))
    if (!bytes) throw new PretrainedSourceError(`pretrained weights ${source} not found`)
    return checked(bytes, 's3')
  }
  if (scheme !== 'https' && !(scheme === 'http' && LOOPBACK.has(new URL(source).hostname))) {
    throw new PretrainedSourceError(`pretrained weights must be a path, s3:// or https:// URL, got ${source}`)
  }
  const key = pretrainedCacheKey(source, expected)
  const cached = await options.cache?.get(key)
  if (cached) return checked(cached, 'cache')
  const log = options.log ?? (() => {})
  log(`downloading pretrained weights ${source}`)
  let bytes: Uint8Array
  try {
    const res = await (options.fetch ?? fetch)(source, { signal: AbortSignal.timeout(options.timeoutMs ?? 300_000) })
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`)
    bytes = new Uint8Array(await res.arrayBuffer())
  } catch (err) {
    throw new PretrainedSourceError(
      `cannot download pretrained weights ${source}: ${(err as Error).message}. Without network access, copy the file ` +
        `into the bucket and pass s3://bucket/key, or train from scratch (no pretrained setting)`,
      { cause: err }
    )
  }
  const file = checked(bytes, 'download')
  if (!expected) log(`pretrained weights sha256 ${file.sha256} (pin it with the pretrained sha256 setting)`)
  if (options.cache) {
    await options.cache.put(key, bytes, { contentType: 'application/octet-stream' })
    log(`cached pretrained weights at ${key}`)
  }
  return file
}
