/**
 * Synthetic labelled "faces" and dataset archives for tests, deterministic from a seed.
 *
 * Each image is a noisy background with a face-like ellipse (two darker eyes) whose size and brightness grow
 * with age and whose colour is tinted red for female, blue for male: a signal a small network learns within a
 * few epochs, so a training test can check that the loss falls. Names follow UTKFace
 * (`age_gender_race_datetime.jpg.chip.jpg`), so the images label themselves.
 * @module
 */
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import sharp from 'sharp'
import * as tar from 'tar-stream'
import yazl from 'yazl'
import { createRng } from '../core/random.js'

export interface SyntheticImage {
  /** UTKFace-style file name. */
  readonly name: string
  readonly bytes: Buffer
  readonly age: number
  readonly gender: 0 | 1
  readonly race: number
}

export interface MakeImagesOptions {
  count: number
  /** Width and height in pixels; default 64. */
  size?: number
  /** Default 1. */
  seed?: number
  /** Ages are drawn uniformly from this inclusive range; default 1–90. */
  ages?: readonly [number, number]
}

/** A fixed timestamp for archive entries, so the same files always give the same archive bytes. */
const MTIME = new Date('2017-01-01T00:00:00Z')

export async function makeImages({
  count,
  size = 64,
  seed = 1,
  ages = [1, 90],
}: MakeImagesOptions): Promise<SyntheticImage[]> {
  const rng = createRng(seed)
  const out: SyntheticImage[] = []
  for (let i = 0; i < count; i++) {
    const age = Math.floor(rng.uniform(ages[0], ages[1] + 1))
    const gender = (rng.next() < 0.5 ? 0 : 1) as 0 | 1
    const race = Math.floor(rng.uniform(0, 5))
    const pixels = drawFace(size, age, gender, rng)
    const bytes = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer()
    // 17-digit date field as in UTKFace, unique per seed and index
    const datetime = `2017${String(seed % 10_000).padStart(4, '0')}${String(i).padStart(9, '0')}`
    out.push({ name: `${age}_${gender}_${race}_${datetime}.jpg.chip.jpg`, bytes, age, gender, race })
  }
  return out
}

function drawFace(size: number, age: number, gender: 0 | 1, rng: ReturnType<typeof createRng>): Buffer {
  const pixels = Buffer.alloc(size * size * 3)
  const t = Math.min(age, 100) / 100
  const radius = size * (0.18 + 0.22 * t)
  const brightness = 70 + 150 * t
  const tint = gender === 1 ? [40, 0, -30] : [-30, 0, 40]
  const c = (size - 1) / 2
  const eyeY = c - radius * 0.25
  const eyeDx = radius * 0.4
  const eyeR = Math.max(1, radius * 0.12)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = (x - c) / (radius * 0.8)
      const dy = (y - c) / radius
      const inFace = dx * dx + dy * dy <= 1
      const inEye = Math.hypot(x - (c - eyeDx), y - eyeY) <= eyeR || Math.hypot(x - (c + eyeDx), y - eyeY) <= eyeR
      for (let ch = 0; ch < 3; ch++) {
        const base = inFace ? (inEye ? brightness * 0.3 : brightness + tint[ch]!) : 40
        pixels[(y * size + x) * 3 + ch] = clamp(base + rng.uniform(-20, 20))
      }
    }
  }
  return pixels
}

function clamp(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v)))
}

/** An entry for {@link writeFolder}, {@link zipBuffer} and {@link tarBuffer}. */
export interface ArchiveFile {
  /** `/`-separated path; a name ending in `/` is a folder. */
  readonly name: string
  readonly bytes?: Uint8Array
  /** A symlink to this target instead of a file. */
  readonly symlinkTo?: string
}

/** Writes files into a new temporary folder (nested folders created) and returns its path; remove it after. */
export async function writeFolder(files: readonly ArchiveFile[], dir?: string): Promise<string> {
  const root = dir ?? (await mkdtemp(join(tmpdir(), 'agegender-data-')))
  for (const f of files) {
    const path = join(root, f.name)
    if (f.name.endsWith('/')) {
      await mkdir(path, { recursive: true })
      continue
    }
    await mkdir(dirname(path), { recursive: true })
    if (f.symlinkTo !== undefined) {
      await symlink(f.symlinkTo, path)
    } else {
      await writeFile(path, f.bytes ?? new Uint8Array())
    }
  }
  return root
}

export async function zipBuffer(files: readonly ArchiveFile[]): Promise<Buffer> {
  const zip = new yazl.ZipFile()
  for (const f of files) {
    if (f.name.endsWith('/')) zip.addEmptyDirectory(f.name, { mtime: MTIME })
    else if (f.symlinkTo !== undefined) {
      zip.addBuffer(Buffer.from(f.symlinkTo), f.name, { mtime: MTIME, mode: 0o120777, compress: false })
    } else zip.addBuffer(Buffer.from(f.bytes ?? new Uint8Array()), f.name, { mtime: MTIME })
  }
  zip.end()
  const chunks: Buffer[] = []
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export async function tarBuffer(files: readonly ArchiveFile[], options: { gzip?: boolean } = {}): Promise<Buffer> {
  const pack = tar.pack()
  const done = (async () => {
    const chunks: Buffer[] = []
    for await (const chunk of pack) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
  })()
  for (const f of files) {
    if (f.name.endsWith('/')) pack.entry({ name: f.name, type: 'directory', mtime: MTIME })
    else if (f.symlinkTo !== undefined) {
      pack.entry({ name: f.name, type: 'symlink', linkname: f.symlinkTo, mtime: MTIME })
    } else pack.entry({ name: f.name, mtime: MTIME }, Buffer.from(f.bytes ?? new Uint8Array()))
  }
  pack.finalize()
  const out = await done
  return options.gzip ? gzipSync(out) : out
}

/** Bytes that start like a JPEG (so no extension check catches them) but cannot be decoded. */
export function corruptImage(seed = 1): Buffer {
  const rng = createRng(seed)
  const junk = Buffer.alloc(600)
  for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rng.next() * 256)
  return Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), junk])
}

/**
 * A damaged archive of a few small files: a zip without its central directory, a tar with a broken header
 * checksum, or a gzip cut short. Each keeps its magic bytes, so it is detected as its kind and then fails.
 */
export async function corruptArchive(kind: 'zip' | 'tar' | 'tar.gz'): Promise<Buffer> {
  const files = [
    { name: 'a/1_0_0_20170101000000000.jpg.chip.jpg', bytes: corruptImage(1) },
    { name: 'a/2_1_0_20170101000000001.jpg.chip.jpg', bytes: corruptImage(2) },
  ]
  if (kind === 'zip') {
    const zip = await zipBuffer(files)
    return zip.subarray(0, zip.length - 40)
  }
  if (kind === 'tar.gz') {
    const tgz = await tarBuffer(files, { gzip: true })
    return tgz.subarray(0, Math.floor(tgz.length / 2))
  }
  const tarBytes = Buffer.from(await tarBuffer(files))
  tarBytes.write('garbage', 100, 'latin1') // the first header's mode field: its checksum no longer matches
  return tarBytes
}
