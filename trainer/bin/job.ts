/**
 * The training job's entry point, in the AWS Batch container and under the local job runner alike.
 *
 * Environment contract (set by the job definition and the trigger's container overrides):
 * - `STORE_BUCKET`: the dataset bucket; with `AWS_ENDPOINT_URL` it may be LocalStack or the embedded server.
 *   `STORE_URI` (`s3://bucket`, or a folder path) may be given instead.
 * - `DATASET_KEY`, `DATASET_VERSION` (optional), `RUN_ID`; `DATASET_VERSION_ID` (the S3 version to read) or
 *   `DATASET_ETAG` (the read fails if the object changed since the upload).
 * - `TRAIN_EPOCHS`, `TRAIN_IMAGE_SIZE`, `TRAIN_BATCH_SIZE`, `TRAIN_LEARNING_RATE`, `TRAIN_WIDTH`, `TRAIN_MAX_IMAGES`,
 *   `TRAIN_SEED`, `TRAIN_AGE_LOSS` (l1 | dldl | mean-variance), `TRAIN_EMA` (decay, 0 = off), `TRAIN_GENDER_SMOOTHING`,
 *   `TRAIN_PROGRESSIVE_FROM` (px, 0 = off), `TRAIN_PRETRAINED` (path, s3:// or https://, cached in the bucket under
 *   `pretrained/`), `TRAIN_PRETRAINED_SHA256` (optional settings).
 * - `QUALITY_GATE_MAX_AGE_MAE` (default 12): a successful run is promoted only when its test age MAE is at most this.
 * - `CHECKPOINT_MINUTES` (default 10): checkpoint within an epoch this often, as well as after each epoch.
 * - `AGEGENDER_BACKEND` (default auto; `tensorflow-gpu` fails the run unless TensorFlow reports a GPU),
 *   `AGEGENDER_THREADS` (wasm: XNNPACK threads, default every core up to 8, 1 beside `TRAIN_WORKERS` > 1),
 *   `AWS_BATCH_JOB_ATTEMPT` (set by Batch).
 *
 * SIGTERM/SIGINT: the trainer saves a checkpoint after the current step and the process exits 75, which the
 * job definition's retry strategy retries (ECS sends SIGKILL 30 s after SIGTERM). Exit codes: `exit-codes.ts`.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { formatEngineReport, initEngine, type BackendChoice } from '../../core/engine/index.js'
import { storeFromUri } from '../../core/store/index.js'
import { nvidiaGpuNames, usesGpu } from '../device.js'
import { runJobProcess } from '../job-run.js'
import { packageVersion } from '../version.js'

const controller = new AbortController()
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => controller.abort(new Error(`stopped by ${signal}`)))
}
// Under the local job runner (an IPC channel, never on Batch): if the runner dies, stop at once and write
// nothing, so the run stays `running` and the next start resumes it from its last checkpoint.
if (process.send) {
  process.once('disconnect', () => {
    console.error('the local job runner is gone: stopping (the next start resumes this run)')
    process.exit(137)
  })
}
const code = await runJobProcess(process.env, {
  initEngine: async (backend, threads) => {
    const engine = await initEngine({ backend: backend as BackendChoice, threads })
    for (const line of formatEngineReport(engine.report)) console.error(line)
    return engine
  },
  openStore: (uri) => storeFromUri(uri),
  usesGpu: () => usesGpu(tf.backend()),
  gpuNames: nvidiaGpuNames,
  signal: controller.signal,
  packageVersion,
})
process.exit(code)
