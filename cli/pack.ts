/**
 * A dataset folder as a `.tar.gz` stream, packed on the fly while it uploads: no temporary archive, memory
 * bounded by the stream buffers whatever the folder's size.
 *
 * Regular files only (a symlink to a file is followed; links to folders are not, so no loops), hidden files
 * and folders (`.DS_Store`, `.git`) left out, in sorted order, with paths relative to the folder.
 * @module
 */
import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform, type Readable } from 'node:stream'
import { constants, createGzip } from 'node:zlib'
import * as tar from 'tar-stream'

export interface FolderFile {
  /** Absolute path on disk. */
  readonly path: string
  /** `/`-separated path inside the archive. */
  readonly name: string
  readonly size: number
  readonly mtime: Date
}

/** Every file `packFolder` will pack, in archive order. */
export async function listFolder(root: string, prefix = ''): Promise<FolderFile[]> {
  const entries = (await readdir(root, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  )
  const files: FolderFile[] = []
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue
    const path = join(root, entry.name)
    const name = prefix + entry.name
    if (entry.isDirectory()) {
      files.push(...(await listFolder(path, `${name}/`)))
    } else if (entry.isFile() || entry.isSymbolicLink()) {
      const info = await stat(path).catch(() => undefined)
      if (info?.isFile()) files.push({ path, name, size: info.size, mtime: info.mtime })
    }
  }
  return files
}

/** Bytes the tar will hold before compression: a 512-byte header per file, data padded to 512, 1 KiB end. */
export function tarSize(files: readonly FolderFile[]): number {
  return files.reduce((sum, f) => sum + 512 + Math.ceil(f.size / 512) * 512, 1024)
}

/** A packing stream and how far it got: tar bytes in, compressed bytes out. */
export interface PackedFolder {
  readonly stream: Readable
  /** Tar bytes handed to gzip so far (headers and padding counted as `tarSize` does). */
  tarBytes(): number
  /** Compressed bytes produced so far. */
  gzipBytes(): number
}

/**
 * The files as a gzip-compressed tar stream. A read error (a file deleted or changed size meanwhile) destroys
 * the stream with that error, which fails the upload.
 * @example
 * const { stream } = packFolder(await listFolder('UTKFace'))
 */
export function packFolder(files: readonly FolderFile[]): PackedFolder {
  const pack = tar.pack()
  // Images are already compressed: the fast level gives nearly the same size for far less CPU.
  const gzip = createGzip({ level: constants.Z_BEST_SPEED })
  let tarBytes = 0
  let gzipBytes = 0
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      gzipBytes += chunk.length
      done(null, chunk)
    },
  })
  const fail = (err: unknown) => counted.destroy(err instanceof Error ? err : new Error(String(err)))
  pack.on('error', fail)
  gzip.on('error', fail)
  pack.pipe(gzip).pipe(counted)
  void (async () => {
    for (const file of files) {
      if (counted.destroyed) return
      await addFile(pack, file)
      tarBytes += 512 + Math.ceil(file.size / 512) * 512
    }
    pack.finalize()
  })().catch(fail)
  return { stream: counted, tarBytes: () => tarBytes, gzipBytes: () => gzipBytes }
}

async function addFile(pack: tar.Pack, file: FolderFile): Promise<void> {
  let entry: ReturnType<tar.Pack['entry']> | undefined
  const written = new Promise<void>((done, reject) => {
    entry = pack.entry({ name: file.name, size: file.size, mtime: file.mtime, mode: 0o644, type: 'file' }, (err) =>
      err ? reject(err) : done()
    )
  })
  const sink = entry!
  for await (const chunk of createReadStream(file.path)) {
    // Backpressure: wait while the archive is not being read (the upload is slower than the disk).
    if (!sink.write(chunk as Buffer)) await new Promise<void>((done) => sink.once('drain', () => done(undefined)))
  }
  sink.end(() => undefined)
  await written
}
