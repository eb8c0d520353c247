/**
 * `npm run screenshot`: the try-it page in headless Chromium with a photo answered, saved as a PNG
 * (default docs/predict-page.png), the way a user sees it after `npm start`.
 *
 * ```
 * npm run screenshot -- [--model DIR] [--image FILE] [--mode auto|detect|whole] [--out FILE]
 * ```
 * - `--model`: a trained model, as `npm run train -- --out DIR` leaves it (DIR/model/meta.json) or the model folder
 *   itself; its metrics.json is served beside it when present. Without it, a tiny untrained model answers (the
 *   page looks the same, the ages mean nothing).
 * - `--image`: the photo. Without it, a scene of three UTKFace test-split faces pasted on a blurred background
 *   (from `../shared/data/utkface`), or synthetic faces when that is absent.
 *
 * The predict server is `startPredictServer` as `npm start` runs it, with its face detector, if it has one.
 * Prints what the page showed. Needs Debian's chromium (see support/chromium.ts).
 * @module
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { initEngine } from '../core/engine/index.js'
import { FACE_MODES } from '../core/faces.js'
import { createModel } from '../core/model.js'
import { defaultMeta, saveModel } from '../core/model-io.js'
import { LATEST_MODEL_KEY, modelPrefix, type Promotion } from '../core/runs.js'
import { putJson } from '../core/store/object-store.js'
import { FolderStore } from '../core/store/folder-store.js'
import { loadFaceDetector } from '../core/face-detector.js'
import { startPredictServer } from '../functions/predict/server.js'
import { launchChromium } from '../support/chromium.js'
import { makeImages } from '../support/images.js'

const ROOT = resolve(import.meta.dirname, '..')
const UTKFACE = resolve(ROOT, '../shared/data/utkface')

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    image: { type: 'string' },
    mode: { type: 'string', default: 'auto' },
    out: { type: 'string', default: join(ROOT, 'docs/predict-page.png') },
  },
})
if (!(FACE_MODES as readonly string[]).includes(values.mode!))
  throw new Error(`--mode must be one of ${FACE_MODES.join(', ')}`)

/** Puts the model under models/<runId>/ in `store` and promotes it, as the trainer's promotion does. */
async function serveModel(store: FolderStore, root: string, runId: string): Promise<void> {
  const prefix = modelPrefix(runId)
  if (values.model) {
    const dir = resolve(values.model)
    const modelDir = existsSync(join(dir, 'model', 'meta.json')) ? join(dir, 'model') : dir
    if (!existsSync(join(modelDir, 'meta.json'))) throw new Error(`no meta.json in ${dir} or ${dir}/model`)
    await cp(modelDir, join(root, prefix), { recursive: true })
    const metrics = join(dirname(modelDir), 'metrics.json')
    if (modelDir !== dir && existsSync(metrics)) await cp(metrics, join(root, prefix, 'metrics.json'))
  } else {
    console.warn('no --model: a tiny untrained model answers (the ages mean nothing)')
    const model = createModel({ inputSize: 32, width: 8, seed: 1 })
    await saveModel(model, defaultMeta(32, { runId }), store, prefix)
    model.dispose()
  }
  const promotion: Promotion = { runId, modelPrefix: prefix, promotedAt: new Date().toISOString() }
  await putJson(store, LATEST_MODEL_KEY, promotion)
}

/** Three test-split UTKFace faces on a blurred background made from a fourth; synthetic faces without UTKFace. */
async function makeScene(): Promise<Buffer> {
  const [width, height] = [1200, 675]
  let faces: Buffer[]
  let background: Buffer
  if (existsSync(join(UTKFACE, 'splits.csv'))) {
    const rows = (await readFile(join(UTKFACE, 'splits.csv'), 'utf8'))
      .split('\n')
      .slice(1)
      .filter((r) => r.endsWith(',test'))
    const pick = [3, 101, 257, 400].map((i) => join(UTKFACE, 'UTKFace', rows[i]!.split(',')[0]!))
    const files = await Promise.all(pick.map((f) => readFile(f)))
    faces = files.slice(0, 3)
    background = files[3]!
  } else {
    const images = await makeImages({ count: 4, size: 200, seed: 3 })
    faces = images.slice(0, 3).map((i) => i.bytes)
    background = images[3]!.bytes
  }
  const sizes = [300, 240, 270]
  const places = [
    [110, 190],
    [500, 130],
    [850, 260],
  ]
  const composites = await Promise.all(
    faces.map(async (face, i) => ({
      input: await sharp(face).resize(sizes[i], sizes[i]).toBuffer(),
      left: places[i]![0]!,
      top: places[i]![1]!,
    }))
  )
  return sharp(await sharp(background).resize(width, height, { fit: 'cover' }).blur(25).toBuffer())
    .composite(composites)
    .jpeg({ quality: 90 })
    .toBuffer()
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'screenshot-'))
  const root = join(work, 'store')
  await mkdir(root, { recursive: true })
  const store = new FolderStore(root)
  await initEngine({ backend: 'wasm' })
  await serveModel(store, root, 'screenshot')
  const photo = values.image ? resolve(values.image) : join(work, 'group.jpg')
  if (!values.image) await writeFile(photo, await makeScene())
  const server = await startPredictServer({ store, port: 0, detector: () => loadFaceDetector() })
  const browser = await launchChromium()
  try {
    const page = await browser.newPage({ viewport: { width: 1040, height: 900 }, deviceScaleFactor: 1 })
    await page.goto(`${server.url}/`)
    await page.waitForSelector('body[data-state="ready"]')
    if (values.mode !== 'auto') await page.selectOption('#mode', values.mode!)
    await page.setInputFiles('#file', photo)
    await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 120_000 })
    await mkdir(dirname(values.out!), { recursive: true })
    await page.screenshot({ path: values.out!, fullPage: true })
    console.log(`page: ${await page.textContent('#status')}`)
    for (const li of await page.$$eval('#faces li', (items) => items.map((i) => i.textContent))) console.log(`  ${li}`)
    const note = await page.textContent('#note')
    if (note) console.log(`  note: ${note}`)
    console.log(`  ${await page.textContent('#model')}`)
    console.log(`screenshot: ${values.out}`)
  } finally {
    await browser.close()
    await server.close()
    await rm(work, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
