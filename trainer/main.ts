/**
 * `npm run train`: trains on a local dataset and writes the model, metrics.json, report.html and checkpoints
 * to a folder. The only trainer module that touches argv, env and exit codes.
 * @module
 */
import { resolve } from 'node:path'
import { formatEngineReport, initEngine } from '../core/engine/index.js'
import { FolderStore } from '../core/store/folder-store.js'
import { parseTrainArgs, UsageError } from './cli-args.js'
import { parseTrainConfig } from './config.js'
import { loadDatasetForTraining } from './load.js'
import { train, TrainingError } from './train.js'
import { packageVersion } from './version.js'

async function main(): Promise<void> {
  const args = parseTrainArgs(process.argv.slice(2))
  const config = parseTrainConfig(args.config)
  const engine = await initEngine({ backend: (args.backend ?? process.env.AGEGENDER_BACKEND ?? 'auto') as never })
  console.error(`TensorFlow.js backend: ${engine.description}`)
  for (const line of formatEngineReport(engine.report)) console.error(line)
  const { items, dataset } = await loadDatasetForTraining({ path: resolve(args.data) })
  const out = resolve(args.out)
  const metrics = await train({
    items,
    dataset,
    config,
    output: new FolderStore(out),
    backend: engine,
    resume: args.resume,
    packageVersion,
  })
  const t = metrics.test
  console.log(
    t
      ? `test age MAE ${t.ageMae.toFixed(2)} (median baseline ${metrics.baselines?.medianAgeMae.toFixed(2)}), ` +
          `gender accuracy ${t.genderAccuracy.toFixed(3)} (majority ${metrics.baselines?.majorityGenderAccuracy.toFixed(3)}), ` +
          `${metrics.throughput.trainImagesPerSecond.toFixed(1)} img/s`
      : 'no test split in this dataset'
  )
  console.log(`wrote ${out}/model, ${out}/metrics.json, ${out}/report.html`)
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(err.message)
    process.exitCode = 2
    return
  }
  const known =
    err instanceof TrainingError ||
    (err instanceof Error && /DatasetError|invalid training settings/.test(`${err.name} ${err.message}`))
  console.error(known ? `error: ${(err as Error).message}` : err)
  process.exitCode = 1
})
