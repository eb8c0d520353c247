/**
 * Takes the image out of a predict request, in whichever of the three accepted shapes it came:
 *
 * - raw bytes: `Content-Type: image/jpeg | image/png | image/webp`;
 * - `multipart/form-data` with the file in the field `image`;
 * - `application/json` `{ "image": "<base64>" }`, standard or URL-safe alphabet, optionally a `data:` URL.
 *
 * Only the bytes are extracted here; whether they are a readable image is for the decoder to say.
 * Limits: `bodyLimits(maxBytes)` bounds each shape's body before it is read (a base64 body is a third larger
 * than the image it carries), and the extracted image is checked against `maxBytes` itself.
 * @module
 */
import { ApiError } from './errors.js'

export const RAW_IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const
export type BodyKind = 'raw' | 'multipart' | 'json'

const ACCEPTED =
  `${RAW_IMAGE_TYPES.join(', ')}, multipart/form-data (field "image") ` +
  'or application/json ({"image": "<base64>"})'

/** Room for multipart boundaries and part headers, a data: URL prefix, JSON punctuation and whitespace. */
const ENVELOPE_BYTES = 64 * 1024

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

/** The largest body each shape may have when the image itself may be `maxBytes`. */
export function bodyLimits(maxBytes: number): Record<BodyKind, number> {
  return {
    raw: maxBytes,
    multipart: maxBytes + ENVELOPE_BYTES,
    json: Math.ceil(maxBytes / 3) * 4 + ENVELOPE_BYTES,
  }
}

export const tooLarge = (maxBytes: number) =>
  new ApiError(413, 'payload_too_large', `the image is larger than the limit of ${formatBytes(maxBytes)}`)

export const unsupportedType = (contentType: string | undefined) =>
  new ApiError(
    415,
    'unsupported_media_type',
    contentType ? `unsupported Content-Type ${mediaType(contentType)}` : 'the request has no Content-Type',
    `send ${ACCEPTED}`,
  )

/**
 * @param request the incoming request (its body is consumed).
 * @throws ApiError 400 (missing image, malformed body, bad base64), 413 (over `maxBytes`), 415 (other types).
 */
export async function readImage(request: Request, maxBytes: number): Promise<Uint8Array> {
  const contentType = request.headers.get('content-type') ?? undefined
  const kind = bodyKind(contentType)
  let bytes: Uint8Array
  if (kind === 'raw') bytes = new Uint8Array(await request.arrayBuffer())
  else if (kind === 'multipart') bytes = await fromMultipart(request)
  else if (kind === 'json') bytes = await fromJson(request)
  else {
    // An empty body says "no image" more precisely than a complaint about its type; a declared length
    // answers that without reading the body.
    const length = request.headers.get('content-length')
    const empty = length !== null ? Number(length) === 0 : (await request.arrayBuffer()).byteLength === 0
    throw empty ? missingImage() : unsupportedType(contentType)
  }
  if (bytes.byteLength === 0) throw missingImage()
  if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes)
  return bytes
}

const missingImage = () => new ApiError(400, 'missing_image', 'the request carries no image', `send ${ACCEPTED}`)

async function fromMultipart(request: Request): Promise<Uint8Array> {
  let form: FormData
  try {
    form = await request.formData()
  } catch (err) {
    throw new ApiError(400, 'malformed_body', `cannot parse the multipart body: ${(err as Error).message}`)
  }
  const field = form.get('image')
  if (field === null) {
    throw new ApiError(400, 'missing_image', 'the multipart body has no field "image"', 'attach the file as "image"')
  }
  if (typeof field === 'string') {
    const message = 'the multipart field "image" is text, not a file'
    throw new ApiError(400, 'missing_image', message, 'attach the file as "image"')
  }
  return new Uint8Array(await field.arrayBuffer())
}

async function fromJson(request: Request): Promise<Uint8Array> {
  const text = await request.text()
  if (text.trim() === '') throw missingImage()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (err) {
    throw new ApiError(400, 'malformed_json', `the body is not valid JSON: ${(err as Error).message}`)
  }
  const image = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['image'] : undefined
  if (typeof image !== 'string') {
    const message = 'the JSON body has no string field "image"'
    throw new ApiError(400, 'missing_image', message, 'send {"image": "<base64>"}')
  }
  return decodeBase64Image(image)
}

/**
 * Strict base64: Buffer.from skips any junk silently, which would surface later as a confusing decode error.
 */
export function decodeBase64Image(value: string): Uint8Array {
  let data = value
  const dataUrl = /^data:([^,]*),/i.exec(value)
  if (dataUrl) {
    if (!/;base64$/i.test(dataUrl[1]!)) {
      throw new ApiError(400, 'bad_base64', 'the data: URL is not base64-encoded', 'use data:image/jpeg;base64,...')
    }
    data = value.slice(dataUrl[0].length)
  }
  data = data.replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(data) || data.replace(/=+$/, '').length % 4 === 1) {
    throw new ApiError(400, 'bad_base64', 'the "image" field is not valid base64')
  }
  // Node's base64 decoder reads the URL-safe alphabet too.
  return new Uint8Array(Buffer.from(data, 'base64'))
}

function formatBytes(n: number): string {
  const mib = n / (1024 * 1024)
  return mib >= 1 ? `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`
}
