/**
 * The image formats admitted from outside (predict API, CLI), told apart by their first bytes, never by a
 * `Content-Type` or a file name, which a client can set to anything. Sharp can decode many more formats (SVG,
 * TIFF, AVIF/HEIF, GIF, ...); their decoders must not be reachable from a public endpoint, so anything that
 * does not start like a JPEG, PNG or WebP file is refused before it reaches sharp.
 * @module
 */

export const ADMITTED_FORMATS = ['jpeg', 'png', 'webp'] as const
export type ImageFormat = (typeof ADMITTED_FORMATS)[number]

export const MEDIA_TYPES: Readonly<Record<ImageFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

const ascii = (bytes: Uint8Array, from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to))

/**
 * The admitted format these bytes start with, or `undefined` for anything else (including other image formats).
 *
 * - JPEG: SOI marker followed by another marker, `FF D8 FF`;
 * - PNG: the 8-byte signature `89 50 4E 47 0D 0A 1A 0A`;
 * - WebP: a RIFF container of form type `WEBP` (`RIFF` ․․․․ `WEBP`).
 */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg'
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png'
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp'
  return undefined
}

/** What a file's bytes look like, for messages: the admitted format, or a guess at the refused one. */
export function describeImageBytes(bytes: Uint8Array): string {
  const admitted = sniffImageFormat(bytes)
  if (admitted) return admitted.toUpperCase()
  const head = ascii(bytes, 0, Math.min(bytes.length, 256)).trimStart()
  if (/^(<\?xml|<svg|<!doctype svg)/i.test(head) && /<svg/i.test(head)) return 'SVG'
  if (/^(<\?xml|<!doctype|<html|<svg)/i.test(head)) return 'XML/HTML text'
  if (head.startsWith('GIF87a') || head.startsWith('GIF89a')) return 'GIF'
  if (head.startsWith('II*\u0000') || head.startsWith('MM\u0000*')) return 'TIFF'
  if (bytes.length >= 12 && ascii(bytes, 4, 8) === 'ftyp') {
    const brand = ascii(bytes, 8, 12)
    return /^avi[fs]$/.test(brand) ? 'AVIF' : /^(heic|heix|mif1|msf1|hevc)$/.test(brand) ? 'HEIF' : 'ISO media'
  }
  if (head.startsWith('BM')) return 'BMP'
  if (head.startsWith('%PDF')) return 'PDF'
  return 'an unknown format'
}
