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
