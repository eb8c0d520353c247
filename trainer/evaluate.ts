/**
 * `npm run evaluate -- --model <folder> --data <folder|archive> [--split test|val|train|all] [--json file]`:
 * re-computes a saved model's metrics on a dataset with the same preprocessing as training and prediction.
 * @module
 */
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { initEngine } from '../core/engine/index.js'
import { loadModel } from '../core/model-io.js'
import { Predictor } from '../core/predictor.js'
import { FolderStore } from '../core/store/folder-store.js'
import { decodeAll } from './decode.js'
import { evaluate, type Sample } from './evaluation.js'
import { loadDatasetForTraining } from './load.js'
import { createProgress } from './progress.js'

const USAGE = 'Usage: npm run evaluate -- --model <folder> --data <folder|.zip|.tar|.tar.gz> [--split test|val|train|all] [--json <file>]'

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      split: { type: 'string', default: 'test' },
      json: { type: 'string' },
      backend: { type: 'string' },
    },
  })
  if (!values.model || !values.data || !['test', 'val', 'train', 'all'].includes(values.split)) {
    console.error(USAGE)
    process.exitCode = 2
    return
  }
  const engine = await initEngine({ backend: (values.backend ?? process.env.AGEGENDER_BACKEND ?? 'auto') as never })
  console.error(`TensorFlow.js backend: ${engine.description}`)
  // a training output folder holds the model under model/; a promoted copy holds it at its root
  const root = new FolderStore(resolve(values.model))
  const prefix = (await root.get('model/meta.json')) ? 'model/' : ''
  const { model, meta } = await loadModel(root, prefix)
  const { items } = await loadDatasetForTraining({ path: resolve(values.data) })
  const chosen = items.filter((i) => values.split === 'all' || i.split === values.split)
  const bar = createProgress({ label: 'decode', total: chosen.length })
  const decoded = await decodeAll(
    chosen.map((i) => i.bytes),
    meta.inputSize,
    (d) => bar.update(d)
  )
  bar.stop()
  const samples: Sample[] = chosen.flatMap((item, i) => {
    const pixels = decoded.pixels[i]
    return pixels ? [{ pixels, ...item.label }] : []
  })
  const result = await evaluate(new Predictor(model, meta), samples)
  const m = result.metrics
  console.log(
    `${values.split} split, ${m.count} images (${decoded.failures.length} unreadable): age MAE ${m.ageMae.toFixed(3)}, RMSE ${m.ageRmse.toFixed(3)}, ` +
      `CS@5 ${m.cs5.toFixed(3)}, gender accuracy ${m.genderAccuracy.toFixed(4)}, gender MAE ${m.genderMae.toFixed(4)}, ` +
      `${result.imagesPerSecond.toFixed(1)} images/s`
  )
  for (const [band, g] of Object.entries(m.byAgeBand)) console.log(`  age ${band.padEnd(6)} n=${String(g.count).padStart(5)}  MAE ${g.ageMae.toFixed(2)}`)
  if (values.json) {
    await writeFile(values.json, JSON.stringify({ split: values.split, backend: engine, metrics: m, unreadable: decoded.failures.length }, null, 2))
    console.log(`wrote ${values.json}`)
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
})
