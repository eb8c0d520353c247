/**
 * An ObjectStore over a folder: key `a/b/c.json` is the file `<root>/a/b/c.json`.
 *
 * Writes go to a temporary file in the same folder and are renamed into place, so a reader (or a crash) never
 * sees half an object, the same guarantee S3 gives. Temporary files are named `.~store-*` and never listed;
 * keys with such a segment, `..`, `.`, empty segments, backslashes or absolute paths are rejected so that no
 * key can reach outside the root.
 *
 * ETags are the MD5 of the content (what S3 gives a single-part upload). Conditional puts (`ifNoneMatch`,
 * `ifMatch`) check and rename while holding a lock file `.~store-lock-<name>` beside the object, created with
 * `O_EXCL`, so they also hold between processes sharing the folder. A folder keeps no object versions: a read
 * by `versionId` is refused.
 * @module
 */
import { createReadStream, createWriteStream, type Dirent } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises'
import { createHash, randomBytes } from 'node:crypto'
import { basename, dirname, join, resolve, sep } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { pathToFileURL } from 'node:url'
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

const TEMP_PREFIX = '.~store-'
const LOCK_PREFIX = `${TEMP_PREFIX}lock-`
/** A lock file older than this is left over from a crashed writer and is taken over. */
const STALE_LOCK_MS = 30_000

export class InvalidKeyError extends Error {
  override readonly name = 'InvalidKeyError'
  constructor(
    readonly key: string,
    why: string
  ) {
    super(`invalid store key ${JSON.stringify(key)}: ${why}`)
  }
}

export class FolderStore implements ObjectStore {
  readonly root: string
  readonly location: string

  /** @param root folder holding the objects; created on the first write. */
  constructor(root: string) {
    this.root = resolve(root)
    this.location = pathToFileURL(this.root).href
  }

  async get(key: string, options?: GetOptions): Promise<Uint8Array | undefined> {
    refuseVersion(key, options)
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(await readFile(this.pathOf(key)))
    } catch (err) {
      if (isMissing(err)) return undefined
      throw err
    }
    if (options?.ifMatch !== undefined && md5(bytes) !== unquote(options.ifMatch)) {
      throw new PreconditionFailedError(key, describeCondition(options))
    }
    return bytes
  }

  async getEntry(key: string): Promise<StoredEntry | undefined> {
    const body = await this.get(key)
    return body === undefined ? undefined : { body, etag: md5(body) }
  }

  async getStream(key: string, options?: GetOptions): Promise<Readable | undefined> {
    refuseVersion(key, options)
    if (options?.ifMatch !== undefined) {
      const etag = await this.etagOf(key)
      if (etag === undefined) return undefined
      if (etag !== unquote(options.ifMatch)) throw new PreconditionFailedError(key, describeCondition(options))
    }
    // Open first so that a missing key is an `undefined`, not an error event on the stream later.
    let handle: Awaited<ReturnType<typeof open>> | undefined
    try {
      handle = await open(this.pathOf(key), 'r')
      if (!(await handle.stat()).isFile()) {
        await handle.close()
        return undefined
      }
    } catch (err) {
      await handle?.close()
      if (isMissing(err)) return undefined
      throw err
    }
    return handle.createReadStream()
  }

  async put(key: string, body: Body, options?: PutOptions): Promise<void> {
    const path = this.pathOf(key)
    await mkdir(dirname(path), { recursive: true })
    const temp = join(dirname(path), `${TEMP_PREFIX}${randomBytes(6).toString('hex')}`)
    const conditional = options?.ifNoneMatch !== undefined || options?.ifMatch !== undefined
    try {
      if (body instanceof Readable) await pipeline(body, createWriteStream(temp))
      else await writeFile(temp, body)
      if (!conditional) {
        await rename(temp, path)
        return
      }
      await this.withLock(path, async () => {
        const etag = await this.etagOf(key)
        const holds =
          (options?.ifNoneMatch === undefined || etag === undefined) &&
          (options?.ifMatch === undefined || etag === unquote(options.ifMatch))
        if (!holds) throw new PreconditionFailedError(key, describeCondition(options ?? {}))
        await rename(temp, path)
      })
    } catch (err) {
      await rm(temp, { force: true })
      throw err
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    checkKey(prefix, true)
    // Only walk the folder the prefix points into: `runs/abc/mo` → `<root>/runs/abc/`.
    const dir = prefix.slice(0, prefix.lastIndexOf('/') + 1)
    const found: StoredObject[] = []
    await this.walk(dir, prefix, found)
    return found.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)))
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key)
    try {
      await unlink(path)
    } catch (err) {
      if (isMissing(err)) return
      throw err
    }
    await this.pruneEmptyFolders(dirname(path))
  }

  /** MD5 of the object's content, or `undefined` if it does not exist. */
  private async etagOf(key: string): Promise<string | undefined> {
    const hash = createHash('md5')
    try {
      await pipeline(createReadStream(this.pathOf(key)), hash)
    } catch (err) {
      if (isMissing(err)) return undefined
      throw err
    }
    return hash.digest('hex')
  }

  /** Runs `fn` while holding the lock file of `path` (waits for another holder; takes over a stale lock). */
  private async withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const lock = join(dirname(path), `${LOCK_PREFIX}${basename(path)}`)
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      try {
        const handle = await open(lock, 'wx')
        await handle.close()
        break
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        const since = await stat(lock).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0
        )
        if (since > STALE_LOCK_MS) await rm(lock, { force: true })
        else await sleep(wait)
      }
    }
    try {
      return await fn()
    } finally {
      await rm(lock, { force: true })
    }
  }

  /** The file behind `key`, after checking the key cannot escape the root. */
  pathOf(key: string): string {
    checkKey(key, false)
    return join(this.root, ...key.split('/'))
  }

  private async walk(dir: string, prefix: string, out: StoredObject[]): Promise<void> {
    let entries: Dirent[]
    try {
      entries = await readdir(join(this.root, dir), { withFileTypes: true })
    } catch (err) {
      if (isMissing(err)) return
      throw err
    }
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_PREFIX)) continue
      const key = dir + entry.name
      if (entry.isDirectory()) {
        // Descend only where keys below can still match the prefix.
        const below = `${key}/`
        if (below.startsWith(prefix) || prefix.startsWith(below)) await this.walk(below, prefix, out)
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await stat(join(this.root, key))
        out.push({ key, size: info.size, lastModified: info.mtime })
      }
    }
  }

  /** Removes folders emptied by a delete, up to the root: S3 has no empty "folders" either. */
  private async pruneEmptyFolders(dir: string): Promise<void> {
    while (dir.startsWith(this.root + sep)) {
      try {
        await rmdir(dir)
      } catch {
        return
      }
      dir = dirname(dir)
    }
  }
}

function checkKey(key: string, isPrefix: boolean): void {
  if (!isPrefix && key === '') throw new InvalidKeyError(key, 'empty')
  if (key.startsWith('/') || /^[A-Za-z]:/.test(key)) throw new InvalidKeyError(key, 'absolute path')
  if (key.includes('\\') || key.includes('\0')) throw new InvalidKeyError(key, 'backslash or NUL')
  const segments = key.split('/')
  // A prefix may end with `/` or be cut mid-segment; its complete segments must still be clean.
  const complete = isPrefix ? segments.slice(0, -1) : segments
  for (const segment of complete) {
    if (segment === '') throw new InvalidKeyError(key, 'empty segment or trailing /')
    if (segment === '.' || segment === '..') throw new InvalidKeyError(key, `"${segment}" segment`)
    if (segment.startsWith(TEMP_PREFIX)) throw new InvalidKeyError(key, `${TEMP_PREFIX}* segments are reserved`)
  }
  if (isPrefix && (segments.at(-1) === '..' || segments.at(-1) === '.')) {
    throw new InvalidKeyError(key, `"${segments.at(-1)}" segment`)
  }
}

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex')
const unquote = (etag: string) => etag.replace(/"/g, '')

function refuseVersion(key: string, options: GetOptions | undefined): void {
  if (options?.versionId !== undefined) {
    throw new Error(`cannot read version ${options.versionId} of ${key}: a folder store keeps no object versions`)
  }
}

const isMissing = (err: unknown) => {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR'
}
