/**
 * Takes the images (one or several) and the optional face mode out of a predict request, in whichever of the
 * three accepted shapes it came:
 *
 * - raw bytes: `Content-Type: image/jpeg | image/png | image/webp` (one image);
 * - `multipart/form-data`: one or several files in the field `image` (or `images`), optional text field `mode`;
 * - `application/json`: `{ "image": "<base64>" }` or `{ "images": ["<base64>", ...] }`, optional `"mode"`;
 *   standard or URL-safe base64, optionally as `data:` URLs.
 *
 * Each image's format is sniffed from its bytes ({@link sniffImageFormat}): only JPEG, PNG and WebP pass, whatever
 * the `Content-Type` or file name says, so sharp's other decoders (SVG, TIFF, AVIF, GIF, ...) are never reached.
 * All of this is checked before the model is asked for. Whether an admitted file really decodes is for the
 * decoder to say (per image, later).
 *
 * Limits: `bodyLimits(maxBytes)` bounds each shape's body before it is read (a base64 body is a third larger
 * than the images it carries); the images together may be `maxBytes`, and there may be `maxImages` of them.
 * @module
 */
import { z } from 'zod'
import { describeImageBytes, sniffImageFormat, type ImageFormat } from '../../core/image-format.js'
import { ApiError } from './errors.js'

export const RAW_IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const
export type BodyKind = 'raw' | 'multipart' | 'json'

const ACCEPTED =
  `${RAW_IMAGE_TYPES.join(', ')}, multipart/form-data (files in field "image") ` +
  'or application/json ({"image": "<base64>"} or {"images": ["<base64>", ...]})'

/** Room for multipart boundaries and part headers, data: URL prefixes, JSON punctuation and whitespace. */
const ENVELOPE_BYTES = 64 * 1024

/** One image taken from the request, format checked. */
export interface InputImage {
  /** Position in the request, from 0. */
  readonly index: number
  /** The multipart file name, when there was one. */
  readonly name?: string
  readonly bytes: Uint8Array
  readonly format: ImageFormat
}

export interface PredictInput {
  readonly images: readonly InputImage[]
  /** The `mode` the body carried (a multipart or JSON field), not yet validated. */
  readonly mode?: string
}

export interface InputLimits {
  /** The images together, in bytes. */
  readonly maxBytes: number
  readonly maxImages: number
}

/** The `Content-Type` media type, lower case and without parameters (`''` when absent). */
export const mediaType = (contentType: string | undefined) => (contentType ?? '').split(';')[0]!.trim().toLowerCase()

/** Which body shape a content type announces; `undefined` for anything else. */
export function bodyKind(contentType: string | undefined): BodyKind | undefined {
  const type = mediaType(contentType)
  if ((RAW_IMAGE_TYPES as readonly string[]).includes(type)) return 'raw'
  if (type === 'multipart/form-data') return 'multipart'
  if (type === 'application/json') return 'json'
  return undefined
}

/** The largest body each shape may have when the images together may be `maxBytes`. */
export function bodyLimits(maxBytes: number): Record<BodyKind, number> {
  return {
    raw: maxBytes,
    multipart: maxBytes + ENVELOPE_BYTES,
    json: Math.ceil(maxBytes / 3) * 4 + ENVELOPE_BYTES,
  }
}

export const tooLarge = (maxBytes: number) =>
  new ApiError(
    413,
    'payload_too_large',
    `the images are larger than the limit of ${formatBytes(maxBytes)} per request`,
    'send smaller images, or fewer per request'
  )

export const unsupportedType = (contentType: string | undefined) =>
  new ApiError(
    415,
    'unsupported_media_type',
    contentType ? `unsupported Content-Type ${mediaType(contentType)}` : 'the request has no Content-Type',
    `send ${ACCEPTED}`
  )

/**
 * @param request the incoming request (its body is consumed).
 * @throws ApiError 400 (missing image, too many images, malformed body, bad base64), 413 (over `maxBytes`),
 * 415 (other content types, or image bytes that are not JPEG, PNG or WebP).
 */
export async function readPredictInput(request: Request, limits: InputLimits): Promise<PredictInput> {
  const contentType = request.headers.get('content-type') ?? undefined
  const kind = bodyKind(contentType)
  let parts: RawPart[]
  let mode: string | undefined
  if (kind === 'raw') parts = [{ bytes: new Uint8Array(await request.arrayBuffer()) }]
  else if (kind === 'multipart') ({ parts, mode } = await fromMultipart(request))
  else if (kind === 'json') ({ parts, mode } = await fromJson(request))
  else {
    // An empty body says "no image" more precisely than a complaint about its type; a declared length
    // answers that without reading the body.
    const length = request.headers.get('content-length')
    const empty = length !== null ? Number(length) === 0 : (await request.arrayBuffer()).byteLength === 0
    throw empty ? missingImage() : unsupportedType(contentType)
  }
  if (parts.length === 0 || (parts.length === 1 && parts[0]!.bytes.byteLength === 0)) throw missingImage()
  if (parts.length > limits.maxImages) {
    throw new ApiError(
      400,
      'too_many_images',
      `the request carries ${parts.length} images; at most ${limits.maxImages} are accepted per request`,
      'split the images over several requests'
    )
  }
  const total = parts.reduce((sum, p) => sum + p.bytes.byteLength, 0)
  if (total > limits.maxBytes) throw tooLarge(limits.maxBytes)
  const images = parts.map((part, index): InputImage => {
    const label = imageLabel(index, part.name, parts.length)
    if (part.bytes.byteLength === 0) {
      throw new ApiError(400, 'missing_image', `${label} is empty`, 'attach a JPEG, PNG or WebP file')
    }
    const format = sniffImageFormat(part.bytes)
    if (!format) {
      throw new ApiError(
        415,
        'unsupported_media_type',
        `${label} is ${describeImageBytes(part.bytes)}, not JPEG, PNG or WebP`,
        'only JPEG, PNG and WebP images are accepted (the bytes decide, not the Content-Type or file name)'
      )
    }
    return { index, ...(part.name !== undefined ? { name: part.name } : {}), bytes: part.bytes, format }
  })
  return { images, ...(mode !== undefined ? { mode } : {}) }
}

/** `the image`, `image 2`, `image 2 ("b.jpg")`: how messages name an image (1-based, as people count). */
export function imageLabel(index: number, name: string | undefined, count: number): string {
  const base = count === 1 ? 'the image' : `image ${index + 1}`
  return name ? `${base} (${JSON.stringify(name)})` : base
}

interface RawPart {
  readonly bytes: Uint8Array
  readonly name?: string
}

const missingImage = () => new ApiError(400, 'missing_image', 'the request carries no image', `send ${ACCEPTED}`)

async function fromMultipart(request: Request): Promise<{ parts: RawPart[]; mode?: string }> {
  let form: FormData
  try {
    form = await request.formData()
  } catch (err) {
    throw new ApiError(400, 'malformed_body', `cannot parse the multipart body: ${(err as Error).message}`)
  }
  const fields = [...form.getAll('image'), ...form.getAll('images')]
  if (fields.length === 0) {
    throw new ApiError(400, 'missing_image', 'the multipart body has no field "image"', 'attach the file as "image"')
  }
  const parts: RawPart[] = []
  for (const field of fields) {
    if (typeof field === 'string') {
      const message = 'the multipart field "image" is text, not a file'
      throw new ApiError(400, 'missing_image', message, 'attach the file as "image"')
    }
    parts.push({ bytes: new Uint8Array(await field.arrayBuffer()), ...(field.name ? { name: field.name } : {}) })
  }
  const mode = form.get('mode')
  if (mode !== null && typeof mode !== 'string') {
    throw new ApiError(400, 'bad_mode', 'the multipart field "mode" is a file, not text', 'send mode=auto|detect|whole')
  }
  return { parts, ...(mode !== null ? { mode } : {}) }
}

/** The JSON body: `image` or `images` (not both), and an optional `mode` (validated by the app). */
const JsonBody = z
  .object({
    image: z.string({ error: 'must be a base64 string' }).optional(),
    images: z.array(z.string({ error: 'each must be a base64 string' }), { error: 'must be an array' }).optional(),
    mode: z.string({ error: 'must be a string' }).optional(),
  })
  .refine((b) => !(b.image !== undefined && b.images !== undefined), { message: 'send "image" or "images", not both' })

async function fromJson(request: Request): Promise<{ parts: RawPart[]; mode?: string }> {
  const text = await request.text()
  if (text.trim() === '') throw missingImage()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (err) {
    throw new ApiError(400, 'malformed_json', `the body is not valid JSON: ${(err as Error).message}`)
  }
  const parsed = JsonBody.safeParse(body)
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    throw new ApiError(
      400,
      'malformed_json',
      `unexpected JSON body: ${issues.join('; ')}`,
      'send {"image": "<base64>"}'
    )
  }
  const { image, images, mode } = parsed.data
  const encoded = images ?? (image !== undefined ? [image] : undefined)
  if (!encoded) {
    const message = 'the JSON body has no string field "image" (or array "images")'
    throw new ApiError(400, 'missing_image', message, 'send {"image": "<base64>"}')
  }
  const parts = encoded.map((value, index) => ({
    bytes: decodeBase64Image(value, encoded.length === 1 ? '"image"' : `"images"[${index}]`),
  }))
  return { parts, ...(mode !== undefined ? { mode } : {}) }
}

/**
 * Strict base64: Buffer.from skips any junk silently, which would surface later as a confusing decode error.
 */
export function decodeBase64Image(value: string, field = '"image"'): Uint8Array {
  let data = value
  const dataUrl = /^data:([^,]*),/i.exec(value)
  if (dataUrl) {
    if (!/;base64$/i.test(dataUrl[1]!)) {
      throw new ApiError(
        400,
        'bad_base64',
        `the data: URL in ${field} is not base64-encoded`,
        'use data:image/jpeg;base64,...'
      )
    }
    data = value.slice(dataUrl[0].length)
  }
  data = data.replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(data) || data.replace(/=+$/, '').length % 4 === 1) {
    throw new ApiError(400, 'bad_base64', `the ${field} field is not valid base64`)
  }
  // Node's base64 decoder reads the URL-safe alphabet too.
  return new Uint8Array(Buffer.from(data, 'base64'))
}

function formatBytes(n: number): string {
  const mib = n / (1024 * 1024)
  return mib >= 1 ? `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`
}
