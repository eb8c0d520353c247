/**
 * The image formats this project decodes, recognised by their first bytes: JPEG, PNG and WebP. Anything else
 * (SVG, TIFF, AVIF, GIF, zeros) is not one of ours, whatever its name says.
 * @module
 */
export type ImageFormat = 'jpeg' | 'png' | 'webp'

/** How many leading bytes {@link imageFormatOf} looks at. */
export const IMAGE_SIGNATURE_BYTES = 12

/** The format the bytes start with, or `undefined`. */
export function imageFormatOf(head: Uint8Array): ImageFormat | undefined {
  const b = head
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg'
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) {
    return 'png'
  }
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to))
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp'
  return undefined
}
