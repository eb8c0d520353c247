/**
 * Synthetic scenes for face detection checks: real UTKFace crops pasted onto a larger canvas whose background is
 * another UTKFace image cut into shuffled tiles, enlarged and blurred (its colours and texture, no face). Each pasted crop
 * is known, so detection (IoU against where the face is), framing (the crop cut back out vs the original) and age
 * (through detection vs the crop fed directly) can all be measured. Deterministic from a seed.
 *
 * Used by test/core/face-detector.test.ts, `npm run bench:detect`, `npm run bench:predict` and `npm run eval:faces`.
 * @module
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import sharp, { type OverlayOptions } from 'sharp'
import { createRng, shuffled, type Rng } from '../core/random.js'
import { UTKFACE_FRAMING, type Box } from '../core/preprocess.js'

/** `../shared/data/utkface` as CI lays it out (the repository's parent holds `shared/`). */
export const UTKFACE_DIR = resolve(import.meta.dirname, '../../shared/data/utkface')
export const utkfacePresent = (): boolean => existsSync(join(UTKFACE_DIR, 'splits.csv'))

export interface UtkFaceEntry {
  readonly file: string
  readonly age: number
  readonly gender: 0 | 1
  readonly split: 'train' | 'val' | 'test'
}

/** The rows of `splits.csv` (the shared split rule, precomputed from the image bytes). */
export async function utkfaceEntries(split?: UtkFaceEntry['split']): Promise<UtkFaceEntry[]> {
  const text = await readFile(join(UTKFACE_DIR, 'splits.csv'), 'utf8')
  const rows = text.trim().split('\n').slice(1)
  const out: UtkFaceEntry[] = []
  for (const row of rows) {
    const [file, age, gender, , , s] = row.split(',')
    if (!file || !s) continue
    if (split && s !== split) continue
    out.push({ file, age: Number(age), gender: Number(gender) as 0 | 1, split: s as UtkFaceEntry['split'] })
  }
  return out
}

/** A deterministic sample of `count` entries of a split. */
export async function sampleUtkFace(split: UtkFaceEntry['split'], count: number, seed = 1): Promise<UtkFaceEntry[]> {
  return shuffled(await utkfaceEntries(split), createRng(seed)).slice(0, count)
}

export const readUtkFace = (entry: UtkFaceEntry): Promise<Buffer> => readFile(join(UTKFACE_DIR, 'UTKFace', entry.file))

export interface PastedFace {
  readonly entry: UtkFaceEntry
  /** Where the whole crop was pasted (a square, in scene pixels). */
  readonly region: Box
}

export interface Scene {
  /** JPEG (quality 95). */
  readonly bytes: Buffer
  readonly width: number
  readonly height: number
  readonly faces: PastedFace[]
}

export interface SceneOptions {
  readonly width: number
  readonly height: number
  /** The crops to paste (1–4 make sense), in order. */
  readonly faces: readonly UtkFaceEntry[]
  /** An image (another crop) that becomes the blurred background. */
  readonly background: UtkFaceEntry
  /** Pasted crop side as a fraction of the canvas's short side, drawn uniformly. Default [0.18, 0.45]. */
  readonly scale?: readonly [number, number]
  readonly seed: number
}

/** Places up to `count` non-overlapping squares; gives up on a face after 200 tries (then fewer are placed). */
function place(rng: Rng, width: number, height: number, sides: readonly number[]): Box[] {
  const boxes: Box[] = []
  for (const side of sides) {
    for (let attempt = 0; attempt < 200; attempt++) {
      const x = Math.floor(rng.uniform(0, width - side))
      const y = Math.floor(rng.uniform(0, height - side))
      const candidate = { x, y, width: side, height: side }
      const gap = side * 0.05
      const clear = boxes.every(
        (b) => x + side + gap <= b.x || b.x + b.width + gap <= x || y + side + gap <= b.y || b.y + b.height + gap <= y
      )
      if (clear) {
        boxes.push(candidate)
        break
      }
    }
  }
  return boxes
}

/** The image cut into 5×5 tiles, shuffled: its colours and texture without a face's layout. */
async function mosaic(bytes: Buffer, rng: Rng): Promise<Buffer> {
  const n = 5
  const tile = 40
  const source = sharp(bytes).resize(n * tile, n * tile)
  const tiles: Buffer[] = []
  for (let i = 0; i < n * n; i++) {
    const left = (i % n) * tile
    const top = Math.floor(i / n) * tile
    tiles.push(await source.clone().extract({ left, top, width: tile, height: tile }).png().toBuffer())
  }
  const order = shuffled(tiles, rng)
  return sharp({ create: { width: n * tile, height: n * tile, channels: 3, background: '#000' } })
    .composite(order.map((input, i) => ({ input, left: (i % n) * tile, top: Math.floor(i / n) * tile })))
    .png()
    .toBuffer()
}

export async function makeScene(options: SceneOptions): Promise<Scene> {
  const { width, height, seed } = options
  const rng = createRng(seed)
  const [lo, hi] = options.scale ?? [0.18, 0.45]
  const short = Math.min(width, height)
  const sides = options.faces.map(() => Math.round(rng.uniform(lo, hi) * short))
  const regions = place(rng, width, height, sides)
  const background = await sharp(await mosaic(await readUtkFace(options.background), rng))
    .resize(width, height, { fit: 'cover' })
    .blur(Math.max(4, short / 40))
    .toBuffer()
  const composites: OverlayOptions[] = []
  const faces: PastedFace[] = []
  for (const [i, region] of regions.entries()) {
    const entry = options.faces[i]!
    const input = await sharp(await readUtkFace(entry))
      .resize(region.width, region.width, { kernel: 'lanczos3' })
      .toBuffer()
    composites.push({ input, left: region.x, top: region.y })
    faces.push({ entry, region })
  }
  const bytes = await sharp(background).composite(composites).jpeg({ quality: 95 }).toBuffer()
  return { bytes, width, height, faces }
}

/**
 * `count` scenes with 1–4 faces each from `entries` (each face used once, in order), backgrounds from
 * `backgrounds`, canvases between 480×360 and 1280×960.
 */
export async function makeScenes(
  entries: readonly UtkFaceEntry[],
  backgrounds: readonly UtkFaceEntry[],
  count: number,
  seed = 1
): Promise<Scene[]> {
  const rng = createRng(seed)
  const scenes: Scene[] = []
  let next = 0
  for (let i = 0; i < count && next < entries.length; i++) {
    const n = 1 + Math.floor(rng.next() * 4)
    const faces = entries.slice(next, next + n)
    next += n
    const landscape = rng.next() < 0.7
    const long = Math.round(rng.uniform(480, 1280) / 8) * 8
    const shortSide = Math.round((long * 3) / 4)
    scenes.push(
      await makeScene({
        width: landscape ? long : shortSide,
        height: landscape ? shortSide : long,
        faces,
        background: backgrounds[i % backgrounds.length]!,
        // more faces → smaller, so four still fit
        scale: n <= 2 ? [0.2, 0.5] : [0.16, 0.34],
        seed: seed * 1000 + i,
      })
    )
  }
  return scenes
}

/** Where the face sits inside a pasted UTKFace crop: the inverse of the box framing measured on train crops. */
export function expectedFaceBox(region: Box): Box {
  const { side, dx, dy } = UTKFACE_FRAMING.box
  const w = region.width / side
  const cx = region.x + region.width / 2 - dx * w
  const cy = region.y + region.height / 2 - dy * w
  return { x: cx - w / 2, y: cy - w / 2, width: w, height: w }
}

export function iou(a: Box, b: Box): number {
  const x1 = Math.max(a.x, b.x)
  const y1 = Math.max(a.y, b.y)
  const x2 = Math.min(a.x + a.width, b.x + b.width)
  const y2 = Math.min(a.y + a.height, b.y + b.height)
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1)
  return inter / (a.width * a.height + b.width * b.height - inter)
}

/** Mean absolute difference of two equal-length byte arrays. */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`)
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!)
  return sum / a.length
}
