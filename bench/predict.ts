/**
 * `npm run bench:predict`: the predict Lambda as it ships and as it runs from cold.
 *
 * 1. Bundles `functions/predict/lambda.ts` with esbuild and NodeFunction's options (infra/node-function.ts), lays
 *    the asset out as infra/predict-api.ts does (`index.mjs`, `wasm/*.wasm`, sharp's packages under
 *    `node_modules/`), zips it and prints the sizes.
 * 2. Starts an embedded s3rver and promotes a freshly initialised full ResNet18 (width 64, input 64: the
 *    trainer's default image size) as `models/<runId>/` + `models/latest.json`.
 * 3. In a fresh Node process (a cold container) imports the bundle and sends it Function URL events of a
 *    200×200 JPEG: init (import + wasm engine), the first request (model download from S3, warm-up, predict),
 *    then `--requests` warm requests (median, p95).
 *
 * 4. Per stage, in this process on the wasm backend (needs ../shared/data/utkface): decode, detect, crop and model
 *    times (median of `--rounds`) of the face pipeline (core/faces.ts's steps) for a 200×200 UTKFace test crop and
 *    a 1280×960 photo with 3 faces (test crops pasted, support/scenes.ts), with the same ResNet18; then
 *    @vladmandic/face-api's SSD MobileNet v1 detection + age/gender on the same decoded images, and the ratio.
 *
 * Options: `--requests N` (default 50), `--rounds N` (default 10), `--keep` (leave the asset folder for inspection).
 * Timings are of this machine's CPU; a 2048 MB Lambda has about 1.2 vCPU: the same order, not the same figures.
 * @module
 */
import { S3Client } from '@aws-sdk/client-s3'
import { build } from 'esbuild'
import { spawn } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import yazl from 'yazl'
import { initEngine } from '../core/engine/index.js'
import { loadFaceDetector } from '../core/face-detector.js'
import { createModel } from '../core/model.js'
import { Predictor } from '../core/predictor.js'
import { cropFace, decodeOriented } from '../core/preprocess.js'
import { defaultMeta, saveModel } from '../core/model-io.js'
import { LATEST_MODEL_KEY, modelPrefix, type Promotion } from '../core/runs.js'
import { putJson } from '../core/store/object-store.js'
import { S3Store } from '../core/store/s3-store.js'
import { ESM_BANNER } from '../infra/node-function.js'
import { packageClosure } from '../infra/package-closure.js'
import { repoPath, repoRoot } from '../infra/paths.js'
import { FACE_DETECTOR_DIR, FACE_DETECTOR_FILES } from '../infra/predict-api.js'
import { startEmbeddedS3 } from '../local/embedded-s3.js'
import { makeImages } from '../support/images.js'
import { makeScene, readUtkFace, sampleUtkFace, utkfacePresent } from '../support/scenes.js'
import { loadFaceApi } from './face-api-peer.js'

/** As in infra/predict-api.ts (not exported there): sharp stays external and travels with its native packages. */
const SHARP_PACKAGES = ['sharp', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64']
const BUCKET = 'bench-predict'
const RUN_ID = 'bench-resnet18'
const MB = 1024 * 1024

/** esbuild with NodeFunction's defaults and PredictApi's overrides, then the afterBundling copies. */
async function bundle(out: string): Promise<void> {
  await build({
    entryPoints: [repoPath('functions/predict/lambda.ts')],
    outfile: join(out, 'index.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    mainFields: ['module', 'main'],
    banner: { js: ESM_BANNER },
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    external: ['sharp'],
    logLevel: 'warning',
  })
  await mkdir(join(out, 'wasm'))
  const wasmDir = repoPath('node_modules/@tensorflow/tfjs-backend-wasm/dist')
  for (const f of await readdir(wasmDir)) {
    if (f.endsWith('.wasm')) await cp(join(wasmDir, f), join(out, 'wasm', f))
  }
  await mkdir(join(out, FACE_DETECTOR_DIR))
  for (const f of FACE_DETECTOR_FILES) await cp(repoPath(f), join(out, FACE_DETECTOR_DIR, basename(f)))
  for (const dir of packageClosure(repoRoot, SHARP_PACKAGES)) {
    await mkdir(join(out, dirname(dir)), { recursive: true })
    await cp(join(repoRoot, dir), join(out, dir), { recursive: true })
  }
}

async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort()
}

async function assetSizes(dir: string) {
  const sizes = { bundle: 0, map: 0, wasm: 0, detector: 0, nodeModules: 0, total: 0 }
  for (const f of await files(dir)) {
    const { size } = await stat(f)
    const rel = relative(dir, f)
    sizes.total += size
    if (rel === 'index.mjs') sizes.bundle += size
    else if (rel === 'index.mjs.map') sizes.map += size
    else if (rel.startsWith('wasm/')) sizes.wasm += size
    else if (rel.startsWith(`${FACE_DETECTOR_DIR}/`)) sizes.detector += size
    else if (rel.startsWith('node_modules/')) sizes.nodeModules += size
  }
  return sizes
}

/** The deployment zip's size (deflate, as CDK's asset zips are), built in memory. */
async function zipSize(dir: string): Promise<number> {
  const zip = new yazl.ZipFile()
  for (const f of await files(dir)) zip.addFile(f, relative(dir, f))
  zip.end()
  let size = 0
  for await (const chunk of zip.outputStream) size += (chunk as Buffer).length
  return size
}

async function promoteFreshResNet18(store: S3Store): Promise<void> {
  await initEngine({ backend: 'wasm' })
  const model = createModel({ inputSize: 64, width: 64, seed: 1 })
  const prefix = modelPrefix(RUN_ID)
  await saveModel(model, defaultMeta(64, { runId: RUN_ID }), store, prefix)
  model.dispose()
  const promotion: Promotion = { runId: RUN_ID, modelPrefix: prefix, promotedAt: new Date().toISOString() }
  await putJson(store, LATEST_MODEL_KEY, promotion)
}

/** A Function URL event (the test fixture's shape) carrying a 200×200 JPEG, written for the child process. */
async function writeEvents(dir: string): Promise<string> {
  const template = JSON.parse(await readFile(repoPath('test/fixtures/events/function-url/predict-jpeg.json'), 'utf8'))
  const jpeg = (await makeImages({ count: 1, size: 200, seed: 5 }))[0]!.bytes
  const headers = { ...template.headers, 'content-length': String(jpeg.length) }
  const event = { ...template, body: jpeg.toString('base64'), headers }
  const path = join(dir, 'event.json')
  await writeFile(path, JSON.stringify(event))
  return path
}

interface ColdResult {
  initMs: number
  firstMs: number
  firstStatus: number
  latenciesMs: number[]
  loadSeconds?: number
  backend?: string
}

/** Runs the bundle in a new process with the Lambda's environment; the runner prints one JSON line. */
async function runCold(
  assetDir: string,
  eventPath: string,
  s3Env: Readonly<Record<string, string>>,
  requests: number
): Promise<ColdResult> {
  const runner = join(assetDir, '..', 'runner.mjs')
  await writeFile(runner, RUNNER)
  const argv = ['--enable-source-maps', runner, join(assetDir, 'index.mjs'), eventPath, String(requests)]
  const child = spawn(process.execPath, argv, {
    env: {
      PATH: process.env['PATH'] ?? '',
      ...s3Env,
      STORE_BUCKET: BUCKET,
      MODEL_REFRESH_SECONDS: '300',
      WASM_PATH: `${join(assetDir, 'wasm')}/`,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  const last = stdout.trim().split('\n').at(-1)
  if (code !== 0 || !last) throw new Error(`the cold run failed (exit ${code}):\n${stdout}`)
  return JSON.parse(last) as ColdResult
}

/** Plain JS, run by `node` in the child: import the bundle as Lambda would, then time the handler. */
const RUNNER = `
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
const [bundlePath, eventPath, n] = process.argv.slice(2)
const logs = []
console.log = (line) => logs.push(String(line))
const t0 = performance.now()
const { handler } = await import(pathToFileURL(bundlePath).href)
const initMs = performance.now() - t0
const event = JSON.parse(readFileSync(eventPath, 'utf8'))
const call = async () => {
  const t = performance.now()
  const res = await handler(structuredClone(event))
  if (res.statusCode !== 200) throw new Error('status ' + res.statusCode + ': ' + res.body)
  return { ms: performance.now() - t, status: res.statusCode }
}
const first = await call()
const latenciesMs = []
for (let i = 0; i < Number(n); i++) latenciesMs.push((await call()).ms)
const parsed = logs.flatMap((l) => { try { return [JSON.parse(l)] } catch { return [] } })
const loaded = parsed.find((e) => e.message === 'model loaded')
const started = parsed.find((e) => e.message === 'predict function started')
process.stdout.write(JSON.stringify({ initMs, firstMs: first.ms, firstStatus: first.status, latenciesMs,
  loadSeconds: loaded?.loadSeconds, backend: started?.backend }) + '\\n')
`

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`
const ms = (x: number) => `${x.toFixed(0)} ms`
const seconds = (x: number) => `${(x / 1000).toFixed(2)} s`

/** Stage times of the face pipeline against face-api on the same images, in this process (step 4). */
async function stages(rounds: number): Promise<void> {
  if (!utkfacePresent()) {
    console.log('\nper-stage times skipped: they need ../shared/data/utkface (real faces)')
    return
  }
  await initEngine({ backend: 'wasm' })
  const predictor = new Predictor(createModel({ inputSize: 64, width: 64, seed: 1 }), defaultMeta(64))
  predictor.warmUp()
  const detector = await loadFaceDetector()
  const peer = await loadFaceApi()
  const [crop, ...faces] = await sampleUtkFace('test', 4, 401)
  const [background] = await sampleUtkFace('test', 1, 402)
  const images = [
    { name: '200×200 UTKFace crop', bytes: await readUtkFace(crop!) },
    {
      name: '1280×960, 3 faces',
      bytes: (await makeScene({ width: 1280, height: 960, faces, background: background!, scale: [0.2, 0.3], seed: 4 }))
        .bytes,
    },
  ]
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  console.log(
    `\nper stage, warm, median of ${rounds} (this process, ${detector.name}, ResNet18 width 64 at 64 px, wasm)`
  )
  console.log(
    '| image | faces | decode | detect | crop | model | ours total | face-api SSD + age/gender (+ decode) | ours / face-api |'
  )
  console.log('|---|---|---|---|---|---|---|---|---|')
  for (const { name, bytes } of images) {
    const t: Record<'decode' | 'detect' | 'crop' | 'model' | 'peer', number[]> = {
      decode: [],
      detect: [],
      crop: [],
      model: [],
      peer: [],
    }
    let found = 0
    let peerFound = 0
    for (let r = 0; r <= rounds; r++) {
      const at = [performance.now()]
      const image = await decodeOriented(bytes)
      at.push(performance.now())
      const detected = await detector.detect(image)
      at.push(performance.now())
      // auto mode: the whole image when nothing is found
      const pixels = detected.length
        ? await Promise.all(detected.map((f) => cropFace(image, f, 64)))
        : [await cropFace(image, null, 64)]
      at.push(performance.now())
      await predictor.predictDecoded(pixels)
      at.push(performance.now())
      const peerImage = await decodeOriented(bytes)
      const peerFaces = await peer.detectAgeGender(peerImage)
      at.push(performance.now())
      if (r === 0) continue // warm-up
      found = detected.length
      peerFound = peerFaces.length
      ;(['decode', 'detect', 'crop', 'model', 'peer'] as const).forEach((k, i) => {
        t[k].push(at[i + 1]! - at[i]!)
      })
    }
    const total = median(t.decode.map((d, i) => d + t.detect[i]! + t.crop[i]! + t.model[i]!))
    const peerTotal = median(t.peer)
    const row = [
      name,
      `${found} (face-api ${peerFound})`,
      ...(['decode', 'detect', 'crop', 'model'] as const).map((k) => ms(median(t[k]))),
      ms(total),
      ms(peerTotal),
      (total / peerTotal).toFixed(2),
    ]
    console.log(`| ${row.join(' | ')} |`)
  }
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      requests: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '10' },
      keep: { type: 'boolean', default: false },
    },
  })
  const requests = Number(args.requests)
  if (!Number.isInteger(requests) || requests < 1) {
    throw new Error(`--requests must be a positive integer, got ${args.requests}`)
  }

  const work = await mkdtemp(join(tmpdir(), 'bench-predict-'))
  const asset = join(work, 'asset')
  const s3 = await startEmbeddedS3({ directory: join(work, 's3'), bucket: BUCKET })
  try {
    await bundle(asset)
    const sizes = await assetSizes(asset)
    const zipBytes = await zipSize(asset)
    console.log('asset (as infra/predict-api.ts bundles it)')
    console.log(`  index.mjs        ${mb(sizes.bundle)} (+ ${mb(sizes.map)} source map)`)
    console.log(`  wasm/            ${mb(sizes.wasm)}`)
    console.log(`  ${`${FACE_DETECTOR_DIR}/`.padEnd(16)} ${mb(sizes.detector)} (BlazeFace weights)`)
    console.log(`  node_modules/    ${mb(sizes.nodeModules)} (sharp + libvips)`)
    console.log(`  total unzipped   ${mb(sizes.total)} (Lambda limit 250 MB)`)
    console.log(`  zipped           ${mb(zipBytes)}`)

    const t0 = performance.now()
    await promoteFreshResNet18(new S3Store({ bucket: BUCKET, client: new S3Client(s3.clientConfig) }))
    console.log(`\npromoted a fresh ResNet18 (width 64, input 64) in ${seconds(performance.now() - t0)}`)

    const events = await writeEvents(work)
    const result = await runCold(asset, events, s3.env, requests)
    const sorted = [...result.latenciesMs].sort((a, b) => a - b)
    console.log(`\ncold container (fresh Node process, bundle from the asset folder, model from the embedded S3)`)
    const backend = result.backend ?? 'backend not logged'
    console.log(`  init: import + wasm engine       ${seconds(result.initMs)} (${backend})`)
    console.log(`  first request (load + warm-up)   ${seconds(result.firstMs)}  status ${result.firstStatus}`)
    const load = result.loadSeconds === undefined ? '?' : `${result.loadSeconds.toFixed(2)} s`
    console.log(`    of which model load + warm-up  ${load}`)
    console.log(`warm requests: ${sorted.length} × 200×200 JPEG through the handler (Function URL events)`)
    const [median, p95] = [quantile(sorted, 0.5), quantile(sorted, 0.95)]
    console.log(`  median ${ms(median)}   p95 ${ms(p95)}   min ${ms(sorted[0]!)}   max ${ms(sorted.at(-1)!)}`)
    if (args.keep) console.log(`\nasset kept in ${asset}`)
    await stages(Number(args.rounds))
  } finally {
    await s3.stop()
    if (!args.keep) await rm(work, { recursive: true, force: true })
  }
}

await main()
