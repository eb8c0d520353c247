/**
 * `agegender predict <image...>`: posts each image to the predict API and prints age and gender.
 *
 * The API: `--url`, else `AGEGENDER_PREDICT_URL`, else the running local system's (from
 * `<data dir>/endpoints.json`, `.local` unless `AGEGENDER_DATA_DIR` says otherwise), else
 * `http://127.0.0.1:8787`. A deployed Function URL works the same: `/predict` is added when missing.
 * @module
 */
import { readFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { stringFlag, type Command } from '../command.js'
import { formatPercent } from '../format.js'
import { println, UsageError, type Io } from '../io.js'

export const DEFAULT_PREDICT_URL = 'http://127.0.0.1:8787'

export const predictCommand: Command = {
  name: 'predict',
  args: '<image...> [--url URL]',
  summary: 'estimate age and gender of face images with the served model',
  help: `  --url URL    the predict API or a deployed Function URL (default: the local system's, else ${DEFAULT_PREDICT_URL})
  --json       one JSON response per line`,
  options: { url: { type: 'string' }, json: { type: 'boolean' } },
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError('predict needs at least one image file')
    const endpoint = predictEndpoint(stringFlag(ctx, 'url') ?? (await defaultPredictUrl(ctx.io)))
    let failures = 0
    for (const file of ctx.positionals) {
      const outcome = await predictOne(endpoint, resolve(ctx.io.cwd, file))
      if (!outcome.ok) {
        failures++
        println(ctx.io.stderr, `${file}: ${outcome.error}`)
        // Nothing listens there: every other image would fail the same way.
        if (outcome.unreachable) return 1
        continue
      }
      if (ctx.values['json']) println(ctx.io.stdout, JSON.stringify({ file, ...outcome.body }))
      else println(ctx.io.stdout, describe(file, outcome.body))
    }
    return failures > 0 ? 1 : 0
  },
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

interface PredictBody {
  readonly age: number
  readonly gender: string
  readonly genderProbability: number
  readonly model?: { readonly runId?: string }
}

type Outcome =
  | { readonly ok: true; readonly body: PredictBody }
  | { readonly ok: false; readonly error: string; readonly unreachable?: boolean }

async function predictOne(endpoint: string, path: string): Promise<Outcome> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    return { ok: false, error: `cannot read: ${(err as Error).message}` }
  }
  let response: Response
  try {
    response = await fetch(endpoint, { method: 'POST', headers: { 'content-type': contentTypeOf(bytes) }, body: bytes })
  } catch (err) {
    const inner = (err as { cause?: { code?: string; message?: string } }).cause
    const cause = inner?.code ?? inner?.message ?? (err as Error).message
    return {
      ok: false,
      unreachable: true,
      error: `no predict API at ${endpoint} (${cause}): is \`npm start\` running? Or pass --url`,
    }
  }
  const text = await response.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return { ok: false, error: `HTTP ${response.status} from ${endpoint}: ${text.slice(0, 200)}` }
  }
  if (!response.ok) {
    const e = (body as { error?: { message?: string; hint?: string } }).error
    return { ok: false, error: `HTTP ${response.status}: ${e?.message ?? text.slice(0, 200)}${e?.hint ? ` (${e.hint})` : ''}` }
  }
  const p = body as Partial<PredictBody>
  if (typeof p.age !== 'number' || typeof p.gender !== 'string' || typeof p.genderProbability !== 'number') {
    return { ok: false, error: `unexpected answer from ${endpoint}: ${text.slice(0, 200)}` }
  }
  return { ok: true, body: p as PredictBody }
}

/** The format from the magic bytes, not the file name: the API refuses types it cannot decode anyway. */
export function contentTypeOf(bytes: Uint8Array): string {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg'
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'image/png'
  if (Buffer.from(bytes.subarray(0, 4)).toString('latin1') === 'RIFF' && Buffer.from(bytes.subarray(8, 12)).toString('latin1') === 'WEBP') {
    return 'image/webp'
  }
  return 'application/octet-stream'
}

function describe(file: string, p: PredictBody): string {
  const confidence = p.gender === 'female' ? p.genderProbability : 1 - p.genderProbability
  return `${basename(file)}: age ${p.age.toFixed(1)}, ${p.gender} (${formatPercent(confidence)})${p.model?.runId ? `  [model ${p.model.runId}]` : ''}`
}
