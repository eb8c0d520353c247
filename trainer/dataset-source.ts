/**
 * Reads the files of a dataset without unpacking it to disk: a folder (recursively), a `.zip`, a `.tar`, or a
 * `.tar.gz` / `.tgz`, from a local path or from a Node stream (an S3 object body).
 *
 * - The kind comes from the magic bytes (zip `PK\x03\x04`, gzip `1f 8b`, tar `ustar` at offset 257), then from
 *   the name's suffix, so a misnamed upload still reads and a corrupt one gets the error of its named kind.
 * - Only regular files come out. Folders are passed over; devices, sockets, archived symlinks, encrypted zip
 *   entries and files over `maxEntryBytes` are reported through `onSkip` (`not-a-file`, `encrypted`,
 *   `too-large`). In a folder, symlinks are followed to their files and folders; a broken one is reported as
 *   `broken-link`. Metadata such
 *   as `__MACOSX/` and dot-files is passed over silently ({@link isJunkPath}): it is not data.
 * - Entries come out in archive order (folders: sorted paths). A `labels.csv` is an ordinary entry; since it
 *   may come after the images in a tar stream, the caller collects entries and applies it at the end
 *   (`loadDataset` does: datasets are ~200 MB and the trainer keeps every image's bytes anyway).
 * - A zip needs random access: from a path yauzl reads the file in place; a zip stream is spooled to a
 *   temporary file on local disk first (never to memory), deleted afterwards. Tar and tar.gz stream through in
 *   one pass.
 * - Memory stays bounded: an `EntryFilter` sees each entry's first bytes and the entries it rejects are read
 *   past without being held; caps on the entry count and on the total uncompressed bytes (`maxEntries`,
 *   `maxTotalBytes`) fail the read with a `too-big` {@link DatasetError} that says which cap, before a
 *   decompression bomb fills memory or takes hours.
 * - A corrupt or unknown archive throws a {@link DatasetError} that names the archive and keeps the cause.
 * @module
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, open, readdir, readFile, realpath, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Transform, pipeline } from 'node:stream'
import { pipeline as pipelineAsync } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import * as tar from 'tar-stream'
import * as yauzl from 'yauzl'
import { isJunkPath, normalizePath } from '../core/labels.js'

export type ArchiveKind = 'folder' | 'zip' | 'tar' | 'tar.gz'

/** A local folder or archive, or a stream of an archive with the name that tells its kind (e.g. the S3 key). */
export type DatasetSource =
  | { path: string; kind?: ArchiveKind }
  | { stream: Readable; name: string; kind?: Exclude<ArchiveKind, 'folder'>; size?: number }

export interface DatasetEntry {
  /** Path inside the dataset, `/`-separated, relative to the folder or archive root. */
  readonly name: string
  readonly bytes: Buffer
}

export type EntrySkipReason = 'too-large' | 'not-a-file' | 'encrypted' | 'broken-link' | 'unreadable-image'

/**
 * Decides, from an entry's name and its first bytes (at least {@link ENTRY_HEAD_BYTES}, fewer if it is
 * shorter), whether its bytes are kept: `'keep'`, `'ignore'` (passed over silently), or a reason to report.
 * A rejected entry is read past without being held in memory.
 */
export type EntryFilter = (name: string, head: Uint8Array) => 'keep' | 'ignore' | EntrySkipReason

/** How many leading bytes an {@link EntryFilter} is shown. */
export const ENTRY_HEAD_BYTES = 64

export interface ReadOptions {
  /** Entries larger than this are skipped and reported; default {@link DEFAULT_MAX_ENTRY_BYTES}. */
  maxEntryBytes?: number
  /**
   * Called as input is consumed: bytes of the archive (compressed, for tar.gz) or of the folder's files read
   * so far, and the total when known (a path, or a stream given with `size`).
   */
  onProgress?: (bytesRead: number, totalBytes?: number) => void
  /** Called for each entry passed over for a reason worth reporting. */
  onSkip?: (name: string, reason: EntrySkipReason) => void
  /** Which entries' bytes to keep; default: all. */
  filter?: EntryFilter
  /**
   * The most uncompressed bytes read from all entries together (kept or not); past it the read fails with a
   * `too-big` {@link DatasetError}. Default {@link DEFAULT_MAX_TOTAL_BYTES}.
   */
  maxTotalBytes?: number
  /** The most entries (files, links, folders) a dataset may have; past it the read fails. Default {@link DEFAULT_MAX_ENTRIES}. */
  maxEntries?: number
  /** Where a zip arriving as a stream is spooled (it needs random access); default the OS temp folder. */
  tempDir?: string
}

/** A face photo is well under 1 MB; anything over 20 MB is not one and would only waste memory. */
export const DEFAULT_MAX_ENTRY_BYTES = 20 * 1024 * 1024
/** UTKFace is ~200 MB uncompressed: 8 GiB leaves room for datasets 40 times larger and stops a gzip bomb. */
export const DEFAULT_MAX_TOTAL_BYTES = 8 * 1024 ** 3
/** UTKFace has ~24,000 files. */
export const DEFAULT_MAX_ENTRIES = 1_000_000

/** `read-failed`: the input itself failed (a dropped connection), not its content: worth a retry. */
export type DatasetErrorCode =
  | 'not-found'
  | 'read-failed'
  | 'unknown-format'
  | 'corrupt-archive'
  | 'bad-labels-csv'
  | 'too-big'

/** A dataset that cannot be read; `code` says why, `cause` keeps the underlying error. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError'
  constructor(
    readonly code: DatasetErrorCode,
    message: string,
    options?: { cause?: unknown }
  ) {
    super(message, options)
  }
}

/** Kind from a name's suffix (case-insensitive), or `undefined`. */
export function kindFromName(name: string): Exclude<ArchiveKind, 'folder'> | undefined {
  const n = name.toLowerCase()
  if (n.endsWith('.zip')) return 'zip'
  if (n.endsWith('.tar.gz') || n.endsWith('.tgz')) return 'tar.gz'
  if (n.endsWith('.tar')) return 'tar'
  return undefined
}

/** Kind from the first bytes of an archive (at least 262 for tar), or `undefined`. */
export function kindFromMagic(head: Uint8Array): Exclude<ArchiveKind, 'folder'> | undefined {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength)
  // PK\3\4 starts a zip with entries, PK\5\6 an empty one
  if (b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && (b[2] === 3 || b[2] === 5) && b[3] === b[2] + 1) {
    return 'zip'
  }
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'tar.gz'
  if (b.length >= 262 && b.toString('latin1', 257, 262) === 'ustar') return 'tar'
  return undefined
}

function detectKind(name: string, head: Uint8Array): Exclude<ArchiveKind, 'folder'> {
  const kind = kindFromMagic(head) ?? kindFromName(name)
  if (kind) return kind
  throw new DatasetError(
    'unknown-format',
    `${name}: not a dataset archive (expected a folder, .zip, .tar, .tar.gz or .tgz; the content is none of these)`
  )
}

type Options = ReadOptions & { maxEntryBytes: number; budget: Budget }

/** Yields the regular files of a dataset; see the module notes. */
export async function* readEntries(source: DatasetSource, options: ReadOptions = {}): AsyncGenerator<DatasetEntry> {
  const label = 'path' in source ? source.path : source.name
  const opts: Options = {
    ...options,
    maxEntryBytes: options.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES,
    budget: new Budget(
      label,
      options.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES,
      options.maxEntries ?? DEFAULT_MAX_ENTRIES
    ),
  }
  if ('path' in source) {
    const info = await stat(source.path).catch((cause: unknown) => {
      throw new DatasetError('not-found', `${source.path}: cannot read the dataset (${message(cause)})`, { cause })
    })
    if (info.isDirectory()) {
      yield* readFolder(source.path, opts)
      return
    }
    // a path given kind 'folder' that is a file gets the kind its content has, or the unknown-format error
    const named = source.kind === 'folder' ? undefined : source.kind
    const kind = named ?? detectKind(source.path, await readHead(source.path))
    if (kind === 'zip') {
      yield* readZip(source.path, () => yauzl.openPromise(source.path, zipOptions), info.size, opts)
    } else {
      yield* readTar(source.path, createReadStream(source.path), kind === 'tar.gz', info.size, opts)
    }
    return
  }
  const { head, stream } = await peek(source.stream, 512).catch((cause: unknown) => {
    throw new DatasetError('read-failed', `${source.name}: reading the stream failed (${message(cause)})`, { cause })
  })
  const kind = source.kind ?? detectKind(source.name, head)
  if (kind === 'zip') {
    // A zip needs random access: spool it to local disk (never to memory), read it there, delete it.
    const folder = await mkdtemp(join(opts.tempDir ?? tmpdir(), 'agegender-zip-'))
    try {
      const file = join(folder, 'dataset.zip')
      await spool(stream, file, source.size, opts).catch((cause: unknown) => {
        if (cause instanceof DatasetError) throw cause
        throw new DatasetError('read-failed', `${source.name}: reading the stream failed (${message(cause)})`, {
          cause,
        })
      })
      // progress was the spooling; entries then come from local disk quickly
      const rest = { ...opts, onProgress: undefined }
      yield* readZip(source.name, () => yauzl.openPromise(file, zipOptions), undefined, rest)
    } finally {
      await rm(folder, { recursive: true, force: true })
    }
  } else {
    yield* readTar(source.name, stream, kind === 'tar.gz', source.size, opts)
  }
}

/** Counts entries and uncompressed bytes against the caps; throws a `too-big` DatasetError past one. */
class Budget {
  private entries = 0
  private bytes = 0
  constructor(
    private readonly label: string,
    readonly maxBytes: number,
    readonly maxEntries: number
  ) {}
  entry(): void {
    if (++this.entries > this.maxEntries) {
      throw new DatasetError(
        'too-big',
        `${this.label}: more than ${this.maxEntries} entries (the cap on entries; raise it if the dataset is really this large)`
      )
    }
  }
  take(bytes: number): void {
    this.bytes += bytes
    if (this.bytes > this.maxBytes) {
      throw new DatasetError(
        'too-big',
        `${this.label}: more than ${formatBytes(this.maxBytes)} uncompressed (the cap on total bytes; raise it if the dataset is really this large)`
      )
    }
  }
}

function formatBytes(n: number): string {
  return n >= 1024 ** 3 ? `${+(n / 1024 ** 3).toFixed(2)} GiB` : `${+(n / 1024 ** 2).toFixed(1)} MiB`
}

async function spool(stream: Readable, file: string, total: number | undefined, opts: Options): Promise<void> {
  let read = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      read += chunk.length
      // a zip is never larger than what it holds by much: the same cap bounds the disk it takes
      if (read > opts.budget.maxBytes) {
        done(
          new DatasetError('too-big', `zip archive over ${formatBytes(opts.budget.maxBytes)} (the cap on total bytes)`)
        )
        return
      }
      opts.onProgress?.(read, total)
      done(null, chunk)
    },
  })
  await pipelineAsync(stream, counter, createWriteStream(file))
}

/**
 * Reads an entry's bytes if the filter keeps them; otherwise drains it without holding it.
 * @returns the bytes, or the filter's verdict.
 */
async function readEntryBody(
  name: string,
  body: AsyncIterable<unknown>,
  opts: Options
): Promise<Buffer | 'ignore' | EntrySkipReason> {
  const chunks: Buffer[] = []
  let length = 0
  let verdict: ReturnType<EntryFilter> | undefined = opts.filter ? undefined : 'keep'
  for await (const value of body) {
    const chunk = value as Buffer
    opts.budget.take(chunk.length)
    if (verdict === undefined || verdict === 'keep') {
      chunks.push(chunk)
      length += chunk.length
    }
    if (verdict === undefined && length >= ENTRY_HEAD_BYTES) {
      verdict = opts.filter!(name, Buffer.concat(chunks))
      if (verdict !== 'keep') chunks.length = 0
    }
  }
  if (verdict === undefined) verdict = opts.filter!(name, Buffer.concat(chunks))
  return verdict === 'keep' ? Buffer.concat(chunks) : verdict
}

const zipOptions: yauzl.Options = { lazyEntries: true, autoClose: true, decodeStrings: true, validateEntrySizes: true }

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

async function readHead(path: string): Promise<Buffer> {
  const file = await open(path, 'r')
  try {
    const head = Buffer.alloc(512)
    const { bytesRead } = await file.read(head, 0, head.length, 0)
    return head.subarray(0, bytesRead)
  } finally {
    await file.close()
  }
}

/**
 * Reads at least `bytes` from the start of a stream (fewer if it ends) and returns them with a stream that
 * replays them before the rest, so kind detection costs no second read of an S3 object.
 */
async function peek(stream: Readable, bytes: number): Promise<{ head: Buffer; stream: Readable }> {
  const iterator = stream[Symbol.asyncIterator]()
  const chunks: Buffer[] = []
  let length = 0
  let done = false
  while (length < bytes) {
    const next = await iterator.next()
    if (next.done) {
      done = true
      break
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array | string)
    chunks.push(chunk)
    length += chunk.length
  }
  const head = Buffer.concat(chunks)
  async function* replay() {
    yield head
    if (done) return
    for (;;) {
      const next = await iterator.next()
      if (next.done) return
      yield next.value as Buffer
    }
  }
  return { head, stream: Readable.from(replay(), { objectMode: false }) }
}

/** How many files a folder read keeps in flight: enough to hide the latency of one small read. */
const FOLDER_READ_AHEAD = 16

async function* readFolder(root: string, opts: Options): AsyncGenerator<DatasetEntry> {
  const files: Array<{ name: string; path: string; size: number }> = []
  // Symlinks are followed (ML users build subsets as folders of links); a folder reached twice is read once.
  const seen = new Set<string>()
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const real = await realpath(dir)
    if (seen.has(real)) return
    seen.add(real)
    const dirents = await readdir(dir, { withFileTypes: true })
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const targets = await Promise.all(
      dirents.map((d) =>
        d.isFile() || d.isSymbolicLink() ? stat(join(dir, d.name)).catch(() => undefined) : Promise.resolve(undefined)
      )
    )
    for (const [i, d] of dirents.entries()) {
      const name = prefix + d.name
      if (isJunkPath(name)) continue
      opts.budget.entry()
      const target = targets[i]
      if (d.isDirectory() || (d.isSymbolicLink() && target?.isDirectory())) await walk(join(dir, d.name), `${name}/`)
      else if (d.isSymbolicLink() && target === undefined) opts.onSkip?.(name, 'broken-link')
      else if (!target?.isFile()) opts.onSkip?.(name, 'not-a-file')
      else if (target.size > opts.maxEntryBytes) opts.onSkip?.(name, 'too-large')
      else {
        opts.budget.take(target.size)
        files.push({ name, path: join(dir, d.name), size: target.size })
      }
    }
  }
  try {
    await walk(root, '')
  } catch (cause) {
    if (cause instanceof DatasetError) throw cause
    throw new DatasetError('not-found', `${root}: cannot list the folder (${message(cause)})`, { cause })
  }
  const total = files.reduce((sum, f) => sum + f.size, 0)
  let read = 0
  const pending: Array<Promise<Buffer>> = []
  let next = 0
  const fill = () => {
    while (pending.length < FOLDER_READ_AHEAD && next < files.length) {
      const path = files[next++]!.path
      const p = readFile(path)
      p.catch(() => {}) // awaited in order below; this only stops an unhandled rejection while it waits
      pending.push(p)
    }
  }
  for (const file of files) {
    fill()
    let bytes: Buffer
    try {
      bytes = await pending.shift()!
    } catch (cause) {
      throw new DatasetError('read-failed', `${file.path}: cannot read (${message(cause)})`, { cause })
    }
    read += bytes.length
    opts.onProgress?.(read, total)
    const verdict = opts.filter ? opts.filter(file.name, bytes.subarray(0, ENTRY_HEAD_BYTES)) : 'keep'
    if (verdict === 'keep') yield { name: file.name, bytes }
    else if (verdict !== 'ignore') opts.onSkip?.(file.name, verdict)
  }
}

/** Unix file type bits in a zip entry's external attributes (set by Unix zippers; 0 elsewhere). */
const S_IFMT = 0o170000
const S_IFREG = 0o100000

async function* readZip(
  label: string,
  openZip: () => Promise<yauzl.ZipFile>,
  total: number | undefined,
  opts: Options
): AsyncGenerator<DatasetEntry> {
  const corrupt = (cause: unknown) =>
    cause instanceof DatasetError
      ? cause
      : new DatasetError('corrupt-archive', `${label}: not a readable zip archive (${message(cause)})`, { cause })
  let zip: yauzl.ZipFile
  try {
    zip = await openZip()
  } catch (cause) {
    throw corrupt(cause)
  }
  const size = total ?? zip.fileSize
  let read = 0
  try {
    for await (const entry of zip.eachEntry()) {
      const name = normalizePath(entry.fileName)
      read += entry.compressedSize
      opts.budget.entry()
      const skip = zipSkipReason(entry, name, opts.maxEntryBytes)
      let body: Awaited<ReturnType<typeof readEntryBody>> | undefined
      if (skip === undefined) body = await readEntryBody(name, await zip.openReadStreamPromise(entry), opts)
      else if (skip !== 'silent') opts.onSkip?.(name, skip)
      if (typeof body === 'string' && body !== 'ignore') opts.onSkip?.(name, body)
      opts.onProgress?.(read, size)
      if (Buffer.isBuffer(body)) yield { name, bytes: body }
    }
    // entries' compressed sizes leave out headers and the central directory: end at the whole file
    opts.onProgress?.(size, size)
  } catch (cause) {
    throw corrupt(cause)
  } finally {
    zip.close()
  }
}

function zipSkipReason(entry: yauzl.Entry, name: string, max: number): EntrySkipReason | 'silent' | undefined {
  if (name.endsWith('/') || isJunkPath(name)) return 'silent'
  const type = (entry.externalFileAttributes >>> 16) & S_IFMT
  if (type !== 0 && type !== S_IFREG) return 'not-a-file'
  if (entry.isEncrypted()) return 'encrypted'
  if (entry.uncompressedSize > max) return 'too-large'
  return undefined
}

async function* readTar(
  label: string,
  input: Readable,
  gzipped: boolean,
  total: number | undefined,
  opts: Options
): AsyncGenerator<DatasetEntry> {
  let read = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      read += chunk.length
      opts.onProgress?.(read, total)
      done(null, chunk)
    },
  })
  const extract = tar.extract()
  let failure: unknown
  let inputError: unknown
  input.once('error', (err) => (inputError = err))
  // pipeline destroys every stage with the first error (a truncated gzip, say), which ends the iteration below;
  // tar-stream's streamx Extract is a writable that node's pipeline drives like its own
  const stages = [input, counter, ...(gzipped ? [createGunzip()] : []), extract as unknown as NodeJS.WritableStream]
  pipeline(stages, (err) => {
    if (err) failure ??= err
  })
  const corrupt = (cause: unknown) =>
    cause instanceof DatasetError
      ? cause
      : inputError !== undefined
        ? new DatasetError('read-failed', `${label}: reading failed (${message(inputError)})`, { cause: inputError })
        : new DatasetError(
            'corrupt-archive',
            `${label}: not a readable ${gzipped ? 'tar.gz' : 'tar'} archive (${message(cause)})`,
            { cause }
          )
  try {
    for await (const entry of extract) {
      const { header } = entry
      const name = normalizePath(header.name)
      const regular = header.type === 'file' || header.type === 'contiguous-file'
      opts.budget.entry()
      if (!regular || isJunkPath(name) || (header.size ?? 0) > opts.maxEntryBytes) {
        if (!isJunkPath(name) && header.type !== 'directory') {
          opts.onSkip?.(name, regular ? 'too-large' : 'not-a-file')
        }
        // passed over, but still decompressed: it counts against the cap on total bytes
        opts.budget.take(header.size ?? 0)
        entry.resume()
        continue
      }
      const body = await readEntryBody(name, entry, opts)
      if (Buffer.isBuffer(body)) yield { name, bytes: body }
      else if (body !== 'ignore') opts.onSkip?.(name, body)
    }
  } catch (cause) {
    throw corrupt(failure ?? cause)
  }
  // an input that ends cleanly inside a gzip member or between tar blocks is reported by the pipeline
  if (failure) throw corrupt(failure)
}
