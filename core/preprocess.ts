/**
 * The one image pipeline shared by training, evaluation and prediction, so they can never disagree.
 *
 * bytes (JPEG, PNG, WebP, ...) → sharp: apply EXIF orientation, drop alpha, sRGB, resize to `size`×`size`
 * (cover: scale the short side to `size`, centre crop) → RGB uint8 `[size, size, 3]`
 * → float32 `(pixel / 255 - mean) / std` per channel, ImageNet statistics (what torchvision ResNet18 weights expect).
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import sharp from 'sharp'

export interface Normalization {
  readonly mean: readonly [number, number, number]
  readonly std: readonly [number, number, number]
}

export const IMAGENET: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }

/** An image that sharp cannot read: reported and skipped by the trainer, a 400 in the predict API. */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** Caps what one image may expand to, so a decompression bomb fails fast instead of exhausting memory. */
const MAX_INPUT_PIXELS = 40_000_000

/**
 * Decodes and resizes one image.
 * @returns RGB bytes, row-major `[size, size, 3]`.
 * @throws ImageDecodeError when the bytes are not a readable image.
 */
export async function decodeImage(bytes: Uint8Array, size: number): Promise<Uint8Array> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .resize(size, size, { fit: 'cover', position: 'centre', kernel: 'lanczos3' })
      .raw()
      .toBuffer({ resolveWithObject: true })
    if (info.channels !== 3 || data.length !== size * size * 3) {
      throw new Error(`unexpected decoded shape ${info.width}x${info.height}x${info.channels}`)
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.length)
  } catch (err) {
    throw new ImageDecodeError(`cannot decode image: ${(err as Error).message}`, { cause: err })
  }
}

/** A rectangle in pixels (x, y = top-left corner). */
export interface Box {
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

/** A whole photo, EXIF orientation applied, RGB row-major `[height, width, 3]`. */
export interface OrientedImage {
  readonly data: Uint8Array
  readonly width: number
  readonly height: number
  /**
   * The encoded bytes it was decoded from, when known: `whole` mode then decodes them exactly as training does
   * ({@link decodeImage}; libvips shrinks JPEGs on load, so resizing the decoded pixels would differ slightly).
   */
  readonly source?: Uint8Array
}

/**
 * Decodes a photo at full size with its EXIF orientation applied (what detection and face crops work on).
 * @throws ImageDecodeError when the bytes are not a readable image.
 */
export async function decodeOriented(bytes: Uint8Array): Promise<OrientedImage> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true })
    if (info.channels !== 3) throw new Error(`unexpected decoded channels ${info.channels}`)
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      source: bytes,
    }
  } catch (err) {
    throw new ImageDecodeError(`cannot decode image: ${(err as Error).message}`, { cause: err })
  }
}

/** The centred square that a cover resize of the whole image keeps (what the model sees in `whole` mode). */
export function wholeImageBox(image: Pick<OrientedImage, 'width' | 'height'>): Box {
  const side = Math.min(image.width, image.height)
  return {
    x: Math.floor((image.width - side) / 2),
    y: Math.floor((image.height - side) / 2),
    width: side,
    height: side,
  }
}

/** A detected face as cropFace needs it (core/faces.ts's DetectedFace fits). */
export interface FaceGeometry {
  /** Pixels in the oriented image. */
  readonly box: Box
  /** The subject's eye centres in pixels (right eye = the one on the image's left when upright). */
  readonly eyes?: { readonly left: readonly [number, number]; readonly right: readonly [number, number] }
}

/**
 * How a UTKFace crop ("aligned & cropped": eyes level, face centred with a margin) sits around a detected face.
 * Measured with `npm run measure:framing` (bench/measure-framing.ts): BlazeFace back (core/face-detector.ts) on
 * 150 synthetic scenes with 358 train-split crops pasted at 16–50 % of the short side (354 found), median of each
 * ratio between the pasted square and the detection; interquartile ranges in docs/face-detection.md. Measured in
 * scenes, not on the bare 200×200 files: there the face fills the detector's input and its boxes come out ~20 %
 * larger relative to the face, which framed photo faces ~27 % too loosely.
 * - `eyes`: crop side = `side` × eye distance; crop centre = eye midpoint + (`dx`, `dy`) × eye distance, in the
 *   frame of the eye line (x along it, y perpendicular, pointing down the face). Used when the detector gives eyes.
 * - `box`: crop side = `side` × box width; crop centre = box centre + (`dx`, `dy`) × box width. The fallback.
 * - `levelDegrees`: the crop is rotated to level the eyes only when they tilt more than this (the measured tilt of
 *   the level UTKFace faces is 1.8° median, 3.5° upper quartile: landmark noise, not worth a resampling blur).
 * - `tightCrop`: when the framed square is at least this share of the image's short side, the image already is a
 *   face crop (UTKFace-like input): the model gets the whole image exactly as in training. On the bare UTKFace
 *   files the frame is 0.6–0.9 of the side (the detector sees the face larger there); faces in photos frame far
 *   smaller, except close-up portraits, whose centred square is then their crop.
 */
export const UTKFACE_FRAMING = {
  eyes: { side: 2.502, dx: 0.015, dy: 0.492 },
  box: { side: 1.065, dx: 0.01, dy: -0.012 },
  levelDegrees: 8,
  tightCrop: 0.55,
} as const

/** The square (centre, side, angle in radians) that frames `face` like a UTKFace crop. */
export function faceFrame(face: FaceGeometry): { cx: number; cy: number; side: number; angle: number } {
  if (face.eyes) {
    const [rx, ry] = face.eyes.right
    const [lx, ly] = face.eyes.left
    const d = Math.hypot(lx - rx, ly - ry)
    if (d > 1) {
      const theta = Math.atan2(ly - ry, lx - rx)
      const { side, dx, dy } = UTKFACE_FRAMING.eyes
      const mx = (rx + lx) / 2
      const my = (ry + ly) / 2
      const cos = Math.cos(theta)
      const sin = Math.sin(theta)
      const level = (Math.abs(theta) * 180) / Math.PI > UTKFACE_FRAMING.levelDegrees
      return {
        cx: mx + (cos * dx - sin * dy) * d,
        cy: my + (sin * dx + cos * dy) * d,
        side: side * d,
        angle: level ? theta : 0,
      }
    }
  }
  const { side, dx, dy } = UTKFACE_FRAMING.box
  const w = face.box.width
  return { cx: face.box.x + w / 2 + dx * w, cy: face.box.y + face.box.height / 2 + dy * w, side: side * w, angle: 0 }
}

/**
 * The model's input for one face: `face` null = the whole image, exactly as {@link decodeImage} prepares a training
 * crop (from `image.source` when present); likewise when the face's frame fills the image (`tightCrop`: the input
 * is already a face crop); otherwise the square {@link faceFrame} gives (levelled when the eyes tilt), cut out at
 * source resolution and resized like a training crop (lanczos3).
 * @returns RGB bytes `[size, size, 3]`.
 */
export async function cropFace(image: OrientedImage, face: FaceGeometry | null, size: number): Promise<Uint8Array> {
  const frame = face ? faceFrame(face) : null
  const tight = frame !== null && frame.side >= UTKFACE_FRAMING.tightCrop * Math.min(image.width, image.height)
  if ((!frame || tight) && image.source) return decodeImage(image.source, size)
  let region: { data: Uint8Array; side: number } | null = null
  if (frame && !tight) {
    if (frame.angle === 0) {
      const side = Math.max(1, Math.round(frame.side))
      region = {
        data: squareRegion(image, Math.round(frame.cx - side / 2), Math.round(frame.cy - side / 2), side),
        side,
      }
    } else {
      // resampling beyond 4× the model's input only costs time: lanczos3 from there is as good
      const side = Math.max(1, Math.round(Math.min(frame.side, 4 * Math.max(size, 64))))
      region = { data: rotatedRegion(image, frame, side), side }
    }
  }
  const pipeline = region
    ? sharp(region.data, { raw: { width: region.side, height: region.side, channels: 3 } })
    : sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
  const data = await pipeline
    .resize(size, size, { fit: 'cover', position: 'centre', kernel: 'lanczos3' })
    .raw()
    .toBuffer()
  return new Uint8Array(data.buffer, data.byteOffset, data.length)
}

/** The `side`×`side` region at (left, top) of `image`, black where it leaves the image. */
function squareRegion(image: OrientedImage, left: number, top: number, side: number): Uint8Array {
  const out = new Uint8Array(side * side * 3)
  const x0 = Math.max(0, left)
  const x1 = Math.min(image.width, left + side)
  if (x1 <= x0) return out
  for (let y = Math.max(0, top); y < Math.min(image.height, top + side); y++) {
    const src = (y * image.width + x0) * 3
    out.set(image.data.subarray(src, src + (x1 - x0) * 3), ((y - top) * side + (x0 - left)) * 3)
  }
  return out
}

/**
 * Bilinear samples of the square `frame` (centre, side, angle) as an upright `out`×`out` image: output x runs along
 * the frame's angle. Black outside the image.
 */
function rotatedRegion(
  image: OrientedImage,
  frame: { cx: number; cy: number; side: number; angle: number },
  out: number
): Uint8Array {
  const px = new Uint8Array(out * out * 3)
  const step = frame.side / out
  const cos = Math.cos(frame.angle) * step
  const sin = Math.sin(frame.angle) * step
  const { width, height, data } = image
  for (let v = 0; v < out; v++) {
    const ov = v + 0.5 - out / 2
    for (let u = 0; u < out; u++) {
      const ou = u + 0.5 - out / 2
      // source pixel centres sit at integer + 0.5
      const sx = frame.cx + cos * ou - sin * ov - 0.5
      const sy = frame.cy + sin * ou + cos * ov - 0.5
      const x0 = Math.floor(sx)
      const y0 = Math.floor(sy)
      if (x0 < -1 || y0 < -1 || x0 >= width || y0 >= height) continue
      const fx = sx - x0
      const fy = sy - y0
      const o = (v * out + u) * 3
      for (let c = 0; c < 3; c++) {
        const at = (x: number, y: number) =>
          x < 0 || y < 0 || x >= width || y >= height ? 0 : data[(y * width + x) * 3 + c]!
        const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx
        const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx
        px[o + c] = Math.round(top * (1 - fy) + bottom * fy)
      }
    }
  }
  return px
}

/**
 * Packs decoded images into a batch scaled to [0, 1] (not yet normalized: augmentation works in this space).
 * @returns float32 `[images.length, size, size, 3]`
 */
export function toUnitBatch(images: readonly Uint8Array[], size: number): tf.Tensor4D {
  const plane = size * size * 3
  const out = new Float32Array(images.length * plane)
  images.forEach((img, i) => {
    if (img.length !== plane) throw new Error(`image ${i} has ${img.length} bytes, expected ${plane}`)
    const base = i * plane
    for (let j = 0; j < plane; j++) out[base + j] = img[j]! / 255
  })
  return tf.tensor4d(out, [images.length, size, size, 3])
}

/** `(x - mean) / std` per channel, on a `[batch, h, w, 3]` tensor in [0, 1]. */
export function normalize(unit: tf.Tensor4D, norm: Normalization = IMAGENET): tf.Tensor4D {
  return tf.tidy(() => unit.sub(tf.tensor1d([...norm.mean])).div(tf.tensor1d([...norm.std])) as tf.Tensor4D)
}

/**
 * The centred square of `fraction` of each image's side, resampled (bilinear) back to the batch's size: what a
 * model trained on random crops of 0.8–1 of the side sees at test time, so that a face has the size it had on
 * average in training ({@link ModelMeta}'s `centreCrop`). `fraction` 1 returns the batch as it is.
 */
export function centreCrop(unit: tf.Tensor4D, fraction: number): tf.Tensor4D {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`a centre crop is a fraction in (0, 1], got ${fraction}`)
  if (fraction === 1) return unit
  const [batch, height, width] = unit.shape
  const lo = (1 - fraction) / 2
  const hi = 1 - lo
  return tf.tidy(() =>
    tf.image.cropAndResize(
      unit,
      tf.tensor2d(
        Array.from({ length: batch }, () => [lo, lo, hi, hi]),
        [batch, 4]
      ),
      tf.tensor1d(
        Array.from({ length: batch }, (_, i) => i),
        'int32'
      ),
      [height, width],
      'bilinear'
    )
  )
}

/** Decoded images → the model's input tensor `[batch, size, size, 3]`: centre-cropped by `crop`, normalized. */
export function toModelInput(
  images: readonly Uint8Array[],
  size: number,
  norm: Normalization = IMAGENET,
  crop = 1
): tf.Tensor4D {
  return tf.tidy(() => normalize(centreCrop(toUnitBatch(images, size), crop), norm))
}
