/**
 * `agegender predict <image...> [--mode auto|detect|whole] [--json]`: asks the predict API about each image and
 * prints one row per face (a table), or one JSON line per image with `--json`.
 *
 * Images go several to a request (at most {@link MAX_IMAGES_PER_REQUEST}, and about
 * {@link MAX_BYTES_PER_REQUEST} together, within the API's limits). A file that cannot be read or is not a JPEG,
 * PNG or WebP is reported and skipped before anything is sent; the exit code is 1 when any image failed.
 *
 * The API: `--url`, else `AGEGENDER_PREDICT_URL`, else the running local system's (from
 * `<data dir>/endpoints.json`, `.local` unless `AGEGENDER_DATA_DIR` says otherwise), else
 * `http://127.0.0.1:8787`. A deployed Function URL works the same: `/predict` is added when missing.
 * @module
 */
import { readFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { FACE_MODES, type FaceAnswer, type FaceMode } from '../../core/faces.js'
import { describeImageBytes, MEDIA_TYPES, sniffImageFormat } from '../../core/image-format.js'
import { stringFlag, type Command } from '../command.js'
import { formatPercent, table } from '../format.js'
import { println, UsageError, type Io } from '../io.js'

export const DEFAULT_PREDICT_URL = 'http://127.0.0.1:8787'
/** The API's defaults are 8 images and 5 MiB per request; a little under, for the multipart envelope. */
export const MAX_IMAGES_PER_REQUEST = 8
export const MAX_BYTES_PER_REQUEST = 4.5 * 1024 * 1024

export const predictCommand: Command = {
  name: 'predict',
  args: '<image...> [--mode auto|detect|whole] [--json] [--url URL]',
  summary: 'estimate age and gender of every face in each image with the served model',
  help: `  --mode MODE  auto (default): find faces, else read the whole image as one face (and say so);
               detect: found faces only ("no face found" when none); whole: the image is one face crop
  --json       one JSON line per image: { file, width, height, mode, fellBack, faces: [...], model }
               (or { file, error }); without it, a table with one row per face
  --url URL    the predict API or a deployed Function URL (default: the local system's, else ${DEFAULT_PREDICT_URL})`,
  options: { url: { type: 'string' }, json: { type: 'boolean' }, mode: { type: 'string' } },
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError('predict needs at least one image file')
    const mode = parseMode(stringFlag(ctx, 'mode'))
    const endpoint = predictEndpoint(stringFlag(ctx, 'url') ?? (await defaultPredictUrl(ctx.io)))
    const json = ctx.values['json'] === true
    const { io } = ctx

    const outcomes: Outcome[] = []
    const ready: LocalImage[] = []
    for (const [position, file] of ctx.positionals.entries()) {
      const local = await readLocal(position, file, resolve(io.cwd, file))
      if ('error' in local) outcomes.push(local)
      else ready.push(local)
    }
    for (const batch of batches(ready)) {
      const answered = await predictBatch(endpoint, batch, mode)
      outcomes.push(...answered)
      // Nothing listens there: every other batch would fail the same way.
      if (answered.some((o) => 'error' in o && o.unreachable)) break
    }
    // Back in the order the files were given.
    outcomes.sort((a, b) => a.position - b.position)

    for (const o of outcomes) if ('error' in o) println(io.stderr, `${o.file}: ${o.error}`)
    const answers = outcomes.filter((o): o is Answered => !('error' in o))
    if (json) {
      for (const o of outcomes) {
        if ('error' in o) println(io.stdout, JSON.stringify({ file: o.file, error: o.error }))
        else {
          const { width, height, mode, fellBack, faces } = o.image
          println(io.stdout, JSON.stringify({ file: o.file, width, height, mode, fellBack, faces, model: o.model }))
        }
      }
    } else if (answers.length > 0) {
      println(io.stdout, faceTable(answers))
      println(io.stdout, describeModels(answers))
    }
    return outcomes.some((o) => 'error' in o) ? 1 : 0
  },
}

function parseMode(value: string | undefined): FaceMode {
  if (value === undefined) return 'auto'
  if ((FACE_MODES as readonly string[]).includes(value)) return value as FaceMode
  throw new UsageError(`--mode must be one of ${FACE_MODES.join(', ')}, got ${JSON.stringify(value)}`)
}

/** The base URL a user would pass, from the flag, the environment or the local system. */
export async function defaultPredictUrl(io: Io): Promise<string> {
  const fromEnv = io.env['AGEGENDER_PREDICT_URL']?.trim()
  if (fromEnv) return fromEnv
  const dataDir = resolve(io.cwd, io.env['AGEGENDER_DATA_DIR']?.trim() || '.local')
  try {
    const endpoints = JSON.parse(await readFile(join(dataDir, 'endpoints.json'), 'utf8')) as { predictUrl?: unknown }
    if (typeof endpoints.predictUrl === 'string') return endpoints.predictUrl
  } catch {
    // No local system running from here: fall through to the default port.
  }
  return DEFAULT_PREDICT_URL
}

/** `…/predict`, whatever form the base URL came in. */
export function predictEndpoint(base: string): string {
  let url: URL
  try {
    url = new URL(base)
  } catch {
    throw new UsageError(`not a URL: ${JSON.stringify(base)}`)
  }
  if (!url.pathname.endsWith('/predict')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/predict`
  return url.href
}

/** What the API says about one image (see functions/predict/app.ts). */
interface ImageBody {
  readonly width: number
  readonly height: number
  readonly mode: FaceMode
  readonly fellBack: boolean
  readonly faces: readonly FaceAnswer[]
}

interface ModelBody {
  readonly runId?: string
  readonly detector?: string | null
  readonly ageInterval?: { readonly level: number } | null
}

interface LocalImage {
  /** Where the file was on the command line. */
  readonly position: number
  readonly file: string
  readonly bytes: Buffer
  readonly type: string
}

type Answered = {
  readonly position: number
  readonly file: string
  readonly image: ImageBody
  readonly model: ModelBody
}
type Failed = {
  readonly position: number
  readonly file: string
  readonly error: string
  readonly unreachable?: boolean
}
type Outcome = Answered | Failed

async function readLocal(position: number, file: string, path: string): Promise<LocalImage | Failed> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    return { position, file, error: `cannot read: ${(err as Error).message}` }
  }
  const format = sniffImageFormat(bytes)
  if (!format)
    return { position, file, error: `not sent: the file is ${describeImageBytes(bytes)}, not JPEG, PNG or WebP` }
  return { position, file, bytes, type: MEDIA_TYPES[format] }
}

/** Groups images into requests within the API's limits; a file over the byte budget goes alone. */
export function* batches<T extends { readonly bytes: Uint8Array }>(images: readonly T[]): Generator<T[]> {
  let batch: T[] = []
  let bytes = 0
  for (const image of images) {
    const full = batch.length >= MAX_IMAGES_PER_REQUEST || bytes + image.bytes.byteLength > MAX_BYTES_PER_REQUEST
    if (batch.length > 0 && full) {
      yield batch
      batch = []
      bytes = 0
    }
    batch.push(image)
    bytes += image.bytes.byteLength
  }
  if (batch.length > 0) yield batch
}

async function predictBatch(endpoint: string, batch: readonly LocalImage[], mode: FaceMode): Promise<Outcome[]> {
  const all = (error: string, unreachable = false): Failed[] =>
    batch.map((img) => ({ position: img.position, file: img.file, error, ...(unreachable ? { unreachable } : {}) }))
  const form = new FormData()
  for (const img of batch)
    form.append('image', new Blob([new Uint8Array(img.bytes)], { type: img.type }), basename(img.file))
  const url = new URL(endpoint)
  url.searchParams.set('mode', mode)
  let response: Response
  try {
    response = await fetch(url, { method: 'POST', body: form })
  } catch (err) {
    const inner = (err as { cause?: { code?: string; message?: string } }).cause
    const cause = inner?.code ?? inner?.message ?? (err as Error).message
    return all(`no predict API at ${endpoint} (${cause}): is \`npm start\` running? Or pass --url`, true)
  }
  const text = await response.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return all(`HTTP ${response.status} from ${endpoint}: ${text.slice(0, 200)}`)
  }
  if (!response.ok) {
    const e = (body as { error?: { message?: string; hint?: string } }).error
    return all(`HTTP ${response.status}: ${e?.message ?? text.slice(0, 200)}${e?.hint ? ` (${e.hint})` : ''}`)
  }
  const { images, model } = body as { images?: unknown; model?: ModelBody }
  if (!Array.isArray(images) || images.length !== batch.length) {
    return all(`unexpected answer from ${endpoint} (is it an older API?): ${text.slice(0, 200)}`)
  }
  return batch.map((img, i): Outcome => {
    const entry = images[i] as Partial<ImageBody> & { error?: { message?: string } }
    const at = { position: img.position, file: img.file }
    if (entry.error) return { ...at, error: entry.error.message ?? 'failed' }
    if (!Array.isArray(entry.faces))
      return { ...at, error: `unexpected answer: ${JSON.stringify(entry).slice(0, 200)}` }
    return { ...at, image: entry as ImageBody, model: model ?? {} }
  })
}

const HEADER = ['image', 'face', 'age', 'range', 'gender', 'box (x y w h)', 'found by']

/** One row per face; an image without faces gets one row saying so. */
export function faceTable(answers: readonly Answered[]): string {
  const rows: string[][] = []
  for (const { file, image } of answers) {
    const name = basename(file)
    if (image.faces.length === 0) {
      rows.push([name, '-', '', '', '', '', 'no face found'])
      continue
    }
    image.faces.forEach((face, i) => {
      const confidence = face.gender === 'female' ? face.genderProbability : 1 - face.genderProbability
      const range = face.ageRange
        ? `${face.ageRange.low.toFixed(1)}–${face.ageRange.high.toFixed(1)} (${Math.round(face.ageRange.level * 100)}%)`
        : '-'
      const { x, y, width, height } = face.box
      const how =
        face.method === 'detector'
          ? `detector ${face.score?.toFixed(2) ?? ''}`.trim()
          : image.fellBack
            ? 'whole image (no face found)'
            : 'whole image'
      rows.push([
        name,
        String(i + 1),
        face.age.toFixed(1),
        range,
        `${face.gender} ${formatPercent(confidence)}`,
        `${x} ${y} ${width} ${height}`,
        how,
      ])
    })
  }
  return table(HEADER, rows)
}

/** `model run-x · face detector d · ages with 90% ranges`, once per distinct model. */
function describeModels(answers: readonly Answered[]): string {
  const seen = new Map<string, string>()
  for (const { model } of answers) {
    const text = [
      `model ${model.runId ?? '?'}`,
      model.detector ? `face detector ${model.detector}` : 'no face detector',
      model.ageInterval ? `age ranges at ${Math.round(model.ageInterval.level * 100)}%` : 'no calibrated age ranges',
    ].join(' · ')
    seen.set(text, text)
  }
  return [...seen.values()].join('\n')
}
