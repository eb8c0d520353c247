/**
 * Decodes every image once, at the model's input size, and keeps the RGB bytes in memory so later epochs
 * never decode again (UTKFace at 64 px: 24k × 12 KiB ≈ 290 MB). Unreadable images are reported, not fatal.
 * @module
 */
import { availableParallelism } from 'node:os'
import { decodeImage, ImageDecodeError } from '../core/preprocess.js'
import type { Split } from '../core/split.js'
import type { Sample } from './evaluation.js'
import { createProgress } from '../core/progress.js'

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

/** An image of a labelled dataset, as the loader gives it. */
export interface LabelledImage {
  readonly bytes: Uint8Array
  readonly split: Split
  readonly label: { readonly age: number; readonly gender: 0 | 1; readonly race?: number }
}

/**
 * Decodes `items` with a progress bar ({@link decodeAll}) and groups the readable ones by split, in input order.
 * Failures index into `items`.
 */
export async function decodeSplits(
  items: readonly LabelledImage[],
  size: number,
  progress: { readonly write: (line: string) => void; readonly tty?: boolean | undefined }
): Promise<{ splits: Record<Split, Sample[]>; failures: DecodeResult['failures'] }> {
  const bar = createProgress({
    label: 'decode',
    total: items.length,
    ...(progress.tty === undefined ? {} : { tty: progress.tty }),
    write: progress.write,
  })
  const decoded = await decodeAll(
    items.map((i) => i.bytes),
    size,
    (done) => bar.update(done)
  )
  bar.stop()
  const splits: Record<Split, Sample[]> = { train: [], val: [], test: [] }
  items.forEach((item, i) => {
    const pixels = decoded.pixels[i]
    if (pixels) splits[item.split].push({ pixels, ...item.label })
  })
  return { splits, failures: decoded.failures }
}
