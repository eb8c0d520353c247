/**
 * Decodes every image once, at the model's input size, and keeps the RGB bytes in memory so later epochs
 * never decode again (UTKFace at 64 px: 24k × 12 KiB ≈ 290 MB). Unreadable images are reported, not fatal.
 * @module
 */
import { availableParallelism } from 'node:os'
import { decodeImage, ImageDecodeError } from '../core/preprocess.js'

export interface DecodeResult {
  /** Decoded RGB `[size, size, 3]` per input, or `undefined` where the image could not be read. */
  readonly pixels: (Uint8Array | undefined)[]
  readonly failures: { index: number; reason: string }[]
}

export async function decodeAll(
  images: readonly Uint8Array[],
  size: number,
  onProgress?: (done: number, total: number) => void
): Promise<DecodeResult> {
  const pixels: (Uint8Array | undefined)[] = new Array(images.length)
  const failures: { index: number; reason: string }[] = []
  let next = 0
  let done = 0
  // sharp decodes on libuv's thread pool: a few requests in flight keep every core busy
  const workers = Math.max(2, availableParallelism() * 2)
  const work = async () => {
    while (next < images.length) {
      const i = next++
      try {
        pixels[i] = await decodeImage(images[i]!, size)
      } catch (err) {
        if (!(err instanceof ImageDecodeError)) throw err
        failures.push({ index: i, reason: err.message })
      }
      done++
      if (onProgress && (done % 256 === 0 || done === images.length)) onProgress(done, images.length)
    }
  }
  await Promise.all(Array.from({ length: workers }, work))
  return { pixels, failures }
}
