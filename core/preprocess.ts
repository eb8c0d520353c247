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
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height }
  } catch (err) {
    throw new ImageDecodeError(`cannot decode image: ${(err as Error).message}`, { cause: err })
  }
}

/** The centred square that a cover resize of the whole image keeps (what the model sees in `whole` mode). */
export function wholeImageBox(image: Pick<OrientedImage, 'width' | 'height'>): Box {
  const side = Math.min(image.width, image.height)
  return { x: Math.floor((image.width - side) / 2), y: Math.floor((image.height - side) / 2), width: side, height: side }
}

/**
 * The model's input for one face: `face` null = the whole image, cover-resized exactly like {@link decodeImage}
 * does for training crops; otherwise a square around the detected box, framed like the training crops.
 * @returns RGB bytes `[size, size, 3]`.
 */
export async function cropFace(image: OrientedImage, face: { box: Box } | null, size: number): Promise<Uint8Array> {
  const raw = { raw: { width: image.width, height: image.height, channels: 3 as const } }
  let pipeline = sharp(image.data, raw)
  if (face) {
    // TODO(faces): UTKFace framing (margin, scale, eye-levelling); for now the detector box as a centred square.
    const side = Math.max(face.box.width, face.box.height)
    const cx = face.box.x + face.box.width / 2
    const cy = face.box.y + face.box.height / 2
    pipeline = sharp(squareRegion(image, Math.round(cx - side / 2), Math.round(cy - side / 2), Math.round(side)), {
      raw: { width: Math.round(side), height: Math.round(side), channels: 3 },
    })
  }
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

/** Decoded images → the model's input tensor `[batch, size, size, 3]`. */
export function toModelInput(images: readonly Uint8Array[], size: number, norm: Normalization = IMAGENET): tf.Tensor4D {
  return tf.tidy(() => normalize(toUnitBatch(images, size), norm))
}
