/**
 * `npm run eval:faces -- --model <dir>`: does detection + framing cost accuracy? Age MAE of a trained model
 * through `auto` (detect, frame, predict) against the same UTKFace test-split crops fed directly (as training
 * sees them), on
 * 1. synthetic scenes (support/scenes.ts): `--scenes` canvases with 1–4 test crops each; target: within
 *    1.0 year of direct;
 * 2. the plain test crops (`--crops` of them): target within 0.3 years of direct.
 * `--model`: a training output folder (holding `model/meta.json`) or a model folder itself.
 * @module
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { initEngine } from '../core/engine/index.js'
import { loadFaceDetector } from '../core/face-detector.js'
import { FacePipeline } from '../core/faces.js'
import { loadModel, modelPrefixIn } from '../core/model-io.js'
import { Predictor } from '../core/predictor.js'
import { decodeImage } from '../core/preprocess.js'
import { FolderStore } from '../core/store/folder-store.js'
import {
  expectedFaceBox,
  iou,
  makeScenes,
  readUtkFace,
  sampleUtkFace,
  utkfacePresent,
  UTKFACE_DIR,
} from '../support/scenes.js'

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    scenes: { type: 'string', default: '40' },
    crops: { type: 'string', default: '500' },
  },
})

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

async function main() {
  if (!args.model) {
    console.error('usage: npm run eval:faces -- --model <dir> [--scenes 40] [--crops 500]')
    process.exitCode = 2
    return
  }
  if (!utkfacePresent()) throw new Error(`${UTKFACE_DIR} is absent: eval:faces needs ../shared/data/utkface`)
  const engine = await initEngine({ backend: (process.env['AGEGENDER_BACKEND'] ?? 'auto') as never })
  const root = new FolderStore(resolve(args.model))
  const prefix = await modelPrefixIn(root)
  const { model, meta } = await loadModel(root, prefix)
  const predictor = new Predictor(model, meta)
  const detector = await loadFaceDetector()
  const pipeline = new FacePipeline({ predictor, detector })
  const size = meta.inputSize
  console.log(`model ${args.model} (input ${size} px), ${detector.name}, ${engine.description}`)
  const direct = async (bytes: Uint8Array) => (await predictor.predictDecoded([await decodeImage(bytes, size)]))[0]!.age

  // 1. scenes
  const sceneCount = Number(args.scenes)
  const scenes = await makeScenes(
    await sampleUtkFace('test', sceneCount * 4, 301),
    await sampleUtkFace('test', sceneCount, 302),
    sceneCount,
    31
  )
  const sceneAuto: number[] = []
  const sceneDirect: number[] = []
  let pasted = 0
  let missed = 0
  for (const [i, scene] of scenes.entries()) {
    const answer = await pipeline.analyze(scene.bytes, 'auto')
    for (const face of scene.faces) {
      pasted++
      const expected = expectedFaceBox(face.region)
      const match = answer.faces.find((f) => f.method === 'detector' && iou(f.box, expected) >= 0.5)
      if (!match) {
        missed++
        continue
      }
      sceneAuto.push(Math.abs(match.age - face.entry.age))
      sceneDirect.push(Math.abs((await direct(await readUtkFace(face.entry))) - face.entry.age))
    }
    if ((i + 1) % 10 === 0) console.log(`  scenes ${i + 1}/${scenes.length}`)
  }
  const sceneGap = mean(sceneAuto) - mean(sceneDirect)
  console.log(
    `scenes: ${scenes.length}, faces ${pasted}, found ${pasted - missed}; age MAE auto ${mean(sceneAuto).toFixed(2)} ` +
      `vs direct ${mean(sceneDirect).toFixed(2)} on the same faces: ${sceneGap >= 0 ? '+' : ''}${sceneGap.toFixed(2)} years ` +
      `(target ≤ +1.0: ${sceneGap <= 1 ? 'met' : 'NOT met'})`
  )

  // 2. plain test crops
  const crops = await sampleUtkFace('test', Number(args.crops), 303)
  const cropAuto: number[] = []
  const cropDirect: number[] = []
  let fellBack = 0
  for (const [i, entry] of crops.entries()) {
    const bytes = await readUtkFace(entry)
    const answer = await pipeline.analyze(bytes, 'auto')
    if (answer.fellBack) fellBack++
    cropAuto.push(Math.abs(answer.faces[0]!.age - entry.age))
    cropDirect.push(Math.abs((await direct(bytes)) - entry.age))
    if ((i + 1) % 100 === 0) console.log(`  crops ${i + 1}/${crops.length}`)
  }
  const cropGap = mean(cropAuto) - mean(cropDirect)
  console.log(
    `plain test crops: ${crops.length}, detected ${crops.length - fellBack}, fell back ${fellBack}; age MAE auto ` +
      `${mean(cropAuto).toFixed(2)} vs direct ${mean(cropDirect).toFixed(2)}: ${cropGap >= 0 ? '+' : ''}${cropGap.toFixed(2)} years ` +
      `(target ≤ +0.3: ${cropGap <= 0.3 ? 'met' : 'NOT met'})`
  )
}

await main()
