/**
 * `npm run bench:scale`: how a trained model's accuracy depends on the size its input is resampled to. The
 * images are decoded at the model's input size (as training and serving do), then resized to each size asked
 * and run through the model with BatchNorm in inference mode (no test-time flip). ResNet18 ends in a global
 * average pool, so one set of weights takes any size; what changes is the apparent scale of the face.
 *
 *   tsx bench/input-scale.ts --model runs/utk [--data ../shared/data/utkface/UTKFace] [--split val|test]
 *                            [--sizes 56,64,72] [--crops 1,0.9] [--max-images N]
 *
 * Each size is measured with the model's own centre crop (`meta.centreCrop`); `--crops` also tries other centre
 * crops (a fraction of the side, resampled back) at the model's own size: training sees random crops of 0.8–1 of
 * the side, so a face is on average larger in training than in the whole image.
 *
 * `--model` is a run folder (with `model/`) or a model folder. Prints age MAE and gender accuracy per size on the
 * shared split, the model's own size marked. Used for the progressive-resizing and test-time-scale findings in
 * the README's Results.
 * @module
 */
import path from 'node:path'
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { initEngine } from '../core/engine/index.js'
import { computeMetrics, type Prediction } from '../core/metrics.js'
import { loadModel, modelPrefixIn } from '../core/model-io.js'
import { centreCrop, normalize, toUnitBatch } from '../core/preprocess.js'
import { FolderStore } from '../core/store/folder-store.js'
import { loadDataset } from '../trainer/dataset.js'
import { decodeAll } from '../trainer/decode.js'

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    data: { type: 'string', default: '../shared/data/utkface/UTKFace' },
    split: { type: 'string', default: 'val' },
    sizes: { type: 'string', default: '56,64,72' },
    crops: { type: 'string' },
    'max-images': { type: 'string' },
  },
})
if (!args.model) throw new Error('--model is required: a run folder (with model/) or a model folder')
if (args.split !== 'val' && args.split !== 'test') throw new Error(`--split must be val or test, got ${args.split}`)
const sizes = args.sizes.split(',').map(Number)
if (sizes.some((s) => !Number.isInteger(s) || s < 16))
  throw new Error(`--sizes must be integers from 16: ${args.sizes}`)
const crops = args.crops?.split(',').map(Number) ?? []
if (crops.some((c) => !(c > 0 && c <= 1))) throw new Error(`--crops must be fractions in (0, 1]: ${args.crops}`)

const engine = await initEngine()
const root = path.resolve(args.model)
const store = new FolderStore(root)
const { model, meta } = await loadModel(store, await modelPrefixIn(store))
const dataset = await loadDataset({ path: args.data })
const items = dataset.items
  .filter((i) => i.split === args.split)
  .slice(0, args['max-images'] ? Number(args['max-images']) : undefined)
const decoded = await decodeAll(
  items.map((i) => i.bytes),
  meta.inputSize
)
const samples = items.flatMap((item, i) => (decoded.pixels[i] ? [{ item, pixels: decoded.pixels[i]! }] : []))
console.log(
  `backend: ${engine.description}; model ${args.model} (trained at ${meta.inputSize} px), ${samples.length} ${args.split} images`
)

const BATCH = 64
/** The model's figures on the split with each image resampled to `size` after a centre crop of `crop` of its side. */
function evaluate(size: number, crop: number) {
  const predictions: Prediction[] = []
  for (let b = 0; b < samples.length; b += BATCH) {
    const chunk = samples.slice(b, b + BATCH)
    const [ages, genders] = tf.tidy(() => {
      const unit = toUnitBatch(
        chunk.map((s) => s.pixels),
        meta.inputSize
      )
      const cropped = centreCrop(unit, crop)
      const x = size === meta.inputSize ? cropped : tf.image.resizeBilinear(cropped, [size, size])
      const out = model.apply(normalize(x), { training: false }) as tf.Tensor[]
      return [out[0]!.dataSync(), out[1]!.dataSync()]
    })
    for (const [i, s] of chunk.entries()) {
      predictions.push({
        age: s.item.label.age,
        gender: s.item.label.gender,
        predictedAge: ages![i]!,
        genderProbability: genders![i]!,
      })
    }
  }
  return computeMetrics(predictions)
}

const line = (label: string, m: ReturnType<typeof computeMetrics>, mark: string) =>
  console.log(`${label}: age MAE ${m.ageMae.toFixed(2)}, gender accuracy ${m.genderAccuracy.toFixed(3)}${mark}`)
const own = meta.centreCrop
for (const size of sizes) {
  const mark = size === meta.inputSize ? '  (the model size)' : ''
  line(`${String(size).padStart(4)} px, centre crop ${own}`, evaluate(size, own), mark)
}
for (const crop of crops.filter((c) => c !== own)) {
  line(`${String(meta.inputSize).padStart(4)} px, centre crop ${crop}`, evaluate(meta.inputSize, crop), '')
}
model.dispose()
