import * as tf from '@tensorflow/tfjs'
import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { decodeImage, IMAGENET, ImageDecodeError, toModelInput } from '../../core/preprocess.js'

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
