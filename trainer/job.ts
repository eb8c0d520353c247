/**
 * The training job's entry point, in the AWS Batch container and under the local job runner alike.
 *
 * Environment contract (set by the job definition and the trigger's container overrides):
 * - `STORE_BUCKET`: the dataset bucket; with `AWS_ENDPOINT_URL` it may be LocalStack or the embedded server.
 *   `STORE_URI` (`s3://bucket`, or a folder path) may be given instead.
 * - `DATASET_KEY`, `DATASET_VERSION` (optional), `RUN_ID`.
 * - `TRAIN_EPOCHS`, `TRAIN_IMAGE_SIZE`, `TRAIN_BATCH_SIZE`, `TRAIN_LEARNING_RATE`, `TRAIN_WIDTH`, `TRAIN_MAX_IMAGES`,
 *   `TRAIN_SEED`, `TRAIN_PRETRAINED` (optional settings).
 * - `QUALITY_GATE_MAX_AGE_MAE` (default 12): a successful run is promoted only when its test age MAE is at most this.
 * - `AGEGENDER_BACKEND` (default auto), `AWS_BATCH_JOB_ATTEMPT` (set by Batch).
 * @module
 */
import { formatEngineReport, initEngine } from '../core/engine/index.js'
import { storeFromUri } from '../core/store/index.js'
import { parseJobEnv, runJob } from './job-run.js'
import { packageVersion } from './version.js'

const env = parseJobEnv(process.env)
const engine = await initEngine({ backend: env.backend as never })
console.error(`TensorFlow.js backend: ${engine.description}`)
for (const line of formatEngineReport(engine.report)) console.error(line)
const store = storeFromUri(env.storeUri)
const controller = new AbortController()
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => controller.abort(new Error(`stopped by ${signal}`)))
}
const ok = await runJob({ env, store, backend: engine, packageVersion, signal: controller.signal })
process.exit(ok ? 0 : 1)
