import * as tf from '@tensorflow/tfjs'
import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { centreCrop, decodeImage, IMAGENET, ImageDecodeError, toModelInput } from '../../core/preprocess.js'

const solid = (w: number, h: number, rgb: [number, number, number]) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })

describe('preprocess', () => {
  it('decodes JPEG, PNG with alpha, WebP and grayscale to RGB at the requested size', async () => {
    const inputs = [
      await solid(50, 40, [200, 10, 10]).jpeg().toBuffer(),
      await sharp({ create: { width: 30, height: 30, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } } })
        .png()
        .toBuffer(),
      await solid(64, 64, [10, 200, 10]).webp().toBuffer(),
      await solid(20, 20, [128, 128, 128]).grayscale().png().toBuffer(),
    ]
    for (const bytes of inputs) {
      const px = await decodeImage(bytes, 32)
      expect(px.length).toBe(32 * 32 * 3)
    }
    const red = await decodeImage(inputs[0]!, 32)
    expect(red[0]).toBeGreaterThan(150)
    expect(red[1]).toBeLessThan(60)
  })

  it('applies EXIF orientation before resizing', async () => {
    // a 40x20 image, left half white, right half black, stored rotated by EXIF orientation 6 (90° clockwise)
    const raw = Buffer.alloc(40 * 20 * 3)
    for (let y = 0; y < 20; y++) for (let x = 0; x < 20; x++) raw.fill(255, (y * 40 + x) * 3, (y * 40 + x) * 3 + 3)
    const jpeg = await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } })
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer()
    const px = await decodeImage(jpeg, 16)
    // displayed upright the image is 20 wide and 40 tall with white on top: centre-cropped, the top row is white
    const top = px[(0 * 16 + 8) * 3]!
    const bottom = px[(15 * 16 + 8) * 3]!
    expect(top).toBeGreaterThan(200)
    expect(bottom).toBeLessThan(50)
  })

  it('rejects bytes that are not an image with ImageDecodeError', async () => {
    await expect(decodeImage(Buffer.from('definitely not an image'), 32)).rejects.toBeInstanceOf(ImageDecodeError)
    await expect(decodeImage(Buffer.alloc(0), 32)).rejects.toBeInstanceOf(ImageDecodeError)
  })

  it('centre-crops a batch to the middle of each image, resampled back to its size', () => {
    // a 4x4 single-channel ramp: value = 10·row + column
    const ramp = Array.from({ length: 16 }, (_, i) => 10 * Math.floor(i / 4) + (i % 4))
    const unit = tf.tensor4d([...ramp, ...ramp.map((v) => v + 100)], [2, 4, 4, 1])
    const half = centreCrop(unit, 0.5)
    expect(half.shape).toEqual([2, 4, 4, 1])
    const [first, second] = half.arraySync() as number[][][][]
    // cropAndResize samples the box [0.25, 0.75] on 4 points: rows/columns 0.75, 1.25, 1.75, 2.25 of the image
    expect(first![0]![0]![0]).toBeCloseTo(10 * 0.75 + 0.75, 5)
    expect(first![3]![3]![0]).toBeCloseTo(10 * 2.25 + 2.25, 5)
    expect(second![0]![0]![0]).toBeCloseTo(100 + 10 * 0.75 + 0.75, 5)
    // the whole image is left as it is, and a crop is a fraction of the side
    expect(centreCrop(unit, 1)).toBe(unit)
    expect(() => centreCrop(unit, 0)).toThrow(/fraction in \(0, 1\]/)
    expect(() => centreCrop(unit, 1.2)).toThrow(/fraction in \(0, 1\]/)
    tf.dispose([unit, half])
  })

  it('gives the model the centre crop its meta asks for', () => {
    const px = Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37) % 256)
    const whole = toModelInput([px], 8)
    const cropped = toModelInput([px], 8, IMAGENET, 0.75)
    const expected = tf.tidy(() => centreCrop(whole, 0.75))
    expect(cropped.shape).toEqual([1, 8, 8, 3])
    expect(tf.max(tf.abs(tf.sub(cropped, expected))).dataSync()[0]).toBeLessThan(1e-5)
    expect(tf.max(tf.abs(tf.sub(cropped, whole))).dataSync()[0]).toBeGreaterThan(0.1)
    tf.dispose([whole, cropped, expected])
  })

  it('normalizes with the ImageNet mean and std', () => {
    const px = new Uint8Array(2 * 2 * 3).fill(255)
    const x = toModelInput([px], 2)
    const v = x.dataSync()
    expect(v[0]).toBeCloseTo((1 - IMAGENET.mean[0]) / IMAGENET.std[0], 5)
    expect(v[2]).toBeCloseTo((1 - IMAGENET.mean[2]) / IMAGENET.std[2], 5)
    expect(x.shape).toEqual([1, 2, 2, 3])
    tf.dispose(x)
  })
})
