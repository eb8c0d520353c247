/**
 * `npm run train`: trains on a local dataset and writes the model, metrics.json, report.html and checkpoints
 * to a folder. The only trainer module that touches argv, env, signals and exit codes.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops after the current step with a checkpoint (the same command with `--resume`
 * continues there) and exits 130; a second one quits at once.
 * @module
 */
import { resolve } from 'node:path'
import { BackendChoice, formatEngineReport, initEngine } from '../../core/engine/index.js'
import { ConfigError } from '../../core/errors.js'
import { LabelsCsvError } from '../../core/labels.js'
import { PretrainedSourceError } from '../../core/pretrained-source.js'
import { parseSettings } from '../../core/zod-issues.js'
import { FolderStore } from '../../core/store/folder-store.js'
import { parseTrainArgs, UsageError } from '../cli-args.js'
import { EngineThreads, parseTrainConfig, replicasFor, trainingThreads } from '../config.js'
import { DatasetError } from '../dataset-source.js'
import { loadDatasetForTraining } from '../load.js'
import { replicaRuntime } from '../machine.js'
import { TrainingError, TrainingStopped, train } from '../train.js'
import { packageVersion } from '../version.js'

/** Exit status after a stop by signal: 128 + SIGINT's number, as shells report Ctrl-C. */
const STOPPED_EXIT = 130

let stopRequested: string | undefined
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopRequested) process.exit(STOPPED_EXIT)
    stopRequested = signal
    console.error(`\n${signal}: stopping after this step and saving a checkpoint (again to quit at once)`)
  })
}

async function main(): Promise<void> {
  const args = parseTrainArgs(process.argv.slice(2))
  const config = parseTrainConfig(args.config)
  const backend = parseSettings(
    BackendChoice,
    args.backend ?? process.env.AGEGENDER_BACKEND ?? 'auto',
    'backend (--backend or AGEGENDER_BACKEND)'
  )
  const asked = args.threads ?? process.env.AGEGENDER_THREADS
  const threads = trainingThreads(
    asked === undefined ? undefined : parseSettings(EngineThreads, asked, 'threads (--threads or AGEGENDER_THREADS)'),
    replicasFor(config, replicaRuntime(backend))
  )
  const engine = await initEngine({ backend, threads })
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
    shouldStop: () => stopRequested !== undefined,
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
  if (err instanceof TrainingStopped) {
    console.error(`${err.message}: run the same command with --resume to continue`)
    process.exitCode = STOPPED_EXIT
    return
  }
  if (err instanceof UsageError) {
    console.error(err.message)
    process.exitCode = 2
    return
  }
  // errors that explain themselves get one line; anything else is a bug and keeps its stack
  const known = [TrainingError, DatasetError, ConfigError, LabelsCsvError, PretrainedSourceError].some(
    (kind) => err instanceof kind
  )
  console.error(known ? `error: ${(err as Error).message}` : err)
  process.exitCode = 1
})
