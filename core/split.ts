/**
 * The train / val / test split, derived from an image's bytes alone so that anyone can recompute it and
 * byte-identical images (UTKFace has 375 such groups) always land in the same split, whatever their names:
 *
 *   bucket = parseInt(sha256(bytes).slice(0, 8), 16) % 10  →  0–7 train, 8 val, 9 test
 *
 * On UTKFace this gives train 18,980 / val 2,370 / test 2,358 (see the data README).
 * @module
 */
import { createHash } from 'node:crypto'

export const SPLITS = ['train', 'val', 'test'] as const
export type Split = (typeof SPLITS)[number]

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** The split for a sha256 hex digest, for callers that already hashed the bytes. */
export function splitOfDigest(sha256: string): Split {
  const bucket = parseInt(sha256.slice(0, 8), 16) % 10
  if (Number.isNaN(bucket)) throw new Error(`not a sha256 hex digest: ${JSON.stringify(sha256)}`)
  return bucket < 8 ? 'train' : bucket === 8 ? 'val' : 'test'
}

/** The split of an image and the digest it came from (kept to spot duplicates and to cite in reports). */
export function splitOf(bytes: Uint8Array): { split: Split; sha256: string } {
  const sha256 = sha256Hex(bytes)
  return { split: splitOfDigest(sha256), sha256 }
}
