/**
 * Training-time augmentation on a batch in [0, 1] `[batch, size, size, 3]`:
 * random crop with scale and aspect jitter (zoom 0.8–1), horizontal flip (a reversed crop box),
 * brightness, contrast and saturation jitter (±20%). Parameters come from a seeded {@link Rng}. The crops are
 * resampled to `size` (default: the input's), which is how progressive resizing trains on smaller images.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import type { Rng } from '../core/random.js'

/** The side of a training crop, as a fraction of the image's side, is drawn uniformly from this range. */
export const CROP_SIDE = { min: 0.8, max: 1 } as const

/**
 * The centre crop a model trained with {@link augmentBatch} is served with (`ModelMeta.centreCrop`): the mean
 * side of its training crops, so that a face appears at the size it had on average in training (the
 * train/test object-size discrepancy of FixRes, Touvron et al. 2019). Without it, validation MAE was about 0.25
 * years worse on two trained models (`npm run bench:scale -- --crops`).
 */
export const TEST_CROP = (CROP_SIDE.min + CROP_SIDE.max) / 2

export function augmentBatch(unit: tf.Tensor4D, rng: Rng, size?: number): tf.Tensor4D {
  const [batch, height, width] = unit.shape
  const out: [number, number] = size === undefined ? [height, width] : [size, size]
  const boxes: number[] = []
  const bright: number[] = []
  const contrast: number[] = []
  const saturation: number[] = []
  for (let i = 0; i < batch; i++) {
    const scale = rng.uniform(CROP_SIDE.min, CROP_SIDE.max)
    const aspect = rng.uniform(0.9, 1.1)
    const h = Math.min(1, scale * Math.sqrt(aspect))
    const w = Math.min(1, scale / Math.sqrt(aspect))
    const y1 = rng.uniform(0, 1 - h)
    const x1 = rng.uniform(0, 1 - w)
    // cropAndResize samples x from x1 to x2; x1 > x2 mirrors the crop, so flipping costs nothing extra
    if (rng.next() < 0.5) boxes.push(y1, x1 + w, y1 + h, x1)
    else boxes.push(y1, x1, y1 + h, x1 + w)
    bright.push(rng.uniform(0.8, 1.2))
    contrast.push(rng.uniform(0.8, 1.2))
    saturation.push(rng.uniform(0.8, 1.2))
  }
  return tf.tidy(() => {
    const perImage = (v: number[]) => tf.tensor4d(v, [batch, 1, 1, 1])
    const indices = tf.tensor1d(
      Array.from({ length: batch }, (_, i) => i),
      'int32'
    )
    let x = tf.image.cropAndResize(unit, tf.tensor2d(boxes, [batch, 4]), indices, out, 'bilinear')
    x = x.mul(perImage(bright))
    const gray = x.mul(tf.tensor1d([0.299, 0.587, 0.114])).sum(-1, true)
    x = gray.add(x.sub(gray).mul(perImage(saturation)))
    const mean = gray.mean([1, 2, 3], true)
    x = mean.add(x.sub(mean).mul(perImage(contrast)))
    return x.clipByValue(0, 1) as tf.Tensor4D
  })
}
