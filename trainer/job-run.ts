/**
 * One training run against the store: status `running` → load the dataset from the store → train (resuming
 * from the run's checkpoint, so a retried or restarted attempt continues) → metrics, model, report →
 * promotion through the quality gate → status `succeeded`, or `failed` with the reason.
 * @module
 */
import { z } from 'zod'
import { testSummary } from '../core/metrics.js'
import { copyPrefix } from '../core/model-io.js'
import { LATEST_MODEL_KEY, modelPrefix, runKeys, type Promotion, type RunStatus } from '../core/runs.js'
import { getJson, putJson, type ObjectStore } from '../core/store/object-store.js'
import { prefixedStore } from '../core/store/prefixed-store.js'
import { parseTrainConfig } from './config.js'
import { loadDatasetForTraining } from './load.js'
import { train, type TrainMetrics } from './train.js'

const JobEnv = z
  .object({
    STORE_URI: z.string().optional(),
    STORE_BUCKET: z.string().optional(),
    DATASET_KEY: z.string().min(1),
    DATASET_VERSION: z.string().optional(),
    RUN_ID: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'RUN_ID may hold letters, digits, . _ -'),
    TRAIN_EPOCHS: z.string().optional(),
    TRAIN_IMAGE_SIZE: z.string().optional(),
    TRAIN_BATCH_SIZE: z.string().optional(),
    TRAIN_LEARNING_RATE: z.string().optional(),
    TRAIN_WIDTH: z.string().optional(),
    TRAIN_MAX_IMAGES: z.string().optional(),
    TRAIN_SEED: z.string().optional(),
    TRAIN_WORKERS: z.string().optional(),
    TRAIN_PRETRAINED: z.string().optional(),
    QUALITY_GATE_MAX_AGE_MAE: z.coerce.number().positive().default(12),
    AGEGENDER_BACKEND: z.string().default('auto'),
    AWS_BATCH_JOB_ATTEMPT: z.coerce.number().int().optional(),
  })
  .refine((e) => e.STORE_URI || e.STORE_BUCKET, 'set STORE_BUCKET (or STORE_URI)')

export interface JobEnv {
  readonly storeUri: string
  readonly datasetKey: string
  readonly datasetVersion?: string
  readonly runId: string
  readonly maxAgeMae: number
  readonly backend: string
  readonly attempt: number
  readonly settings: Record<string, string>
}

/** Validates the job environment once; throws naming each bad or missing variable. */
export function parseJobEnv(env: Record<string, string | undefined>): JobEnv {
  const parsed = JobEnv.safeParse(env)
  if (!parsed.success) {
    throw new Error(`invalid job environment: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'env'}: ${i.message}`).join('; ')}`)
  }
  const e = parsed.data
  const settings = Object.fromEntries(
    Object.entries({
      epochs: e.TRAIN_EPOCHS,
      imageSize: e.TRAIN_IMAGE_SIZE,
      batchSize: e.TRAIN_BATCH_SIZE,
      learningRate: e.TRAIN_LEARNING_RATE,
      width: e.TRAIN_WIDTH,
      maxImages: e.TRAIN_MAX_IMAGES,
      seed: e.TRAIN_SEED,
      workers: e.TRAIN_WORKERS,
      pretrained: e.TRAIN_PRETRAINED,
    }).filter((kv): kv is [string, string] => kv[1] !== undefined && kv[1] !== '')
  )
  return {
    storeUri: e.STORE_URI ?? `s3://${e.STORE_BUCKET}`,
    datasetKey: e.DATASET_KEY,
    ...(e.DATASET_VERSION ? { datasetVersion: e.DATASET_VERSION } : {}),
    runId: e.RUN_ID,
    maxAgeMae: e.QUALITY_GATE_MAX_AGE_MAE,
    backend: e.AGEGENDER_BACKEND,
    attempt: e.AWS_BATCH_JOB_ATTEMPT ?? 1,
    settings,
  }
}

export interface RunJobOptions {
  readonly env: JobEnv
  readonly store: ObjectStore
  readonly backend: { name: string; description: string }
  readonly packageVersion?: string
  readonly signal?: AbortSignal
  readonly log?: (line: string) => void
}

/** @returns true when the run succeeded (promoted or not). Never throws for run failures: they land in status.json. */
export async function runJob(options: RunJobOptions): Promise<boolean> {
  const { env, store } = options
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'))
  const keys = runKeys(env.runId)
  const previous = await getJson<RunStatus>(store, keys.status)
  const createdAt = previous?.createdAt ?? new Date().toISOString()
  let status: RunStatus = {
    runId: env.runId,
    state: 'running',
    dataset: { key: env.datasetKey, ...(env.datasetVersion ? { versionId: env.datasetVersion } : {}) },
    ...(previous?.jobId ? { jobId: previous.jobId } : {}),
    attempt: env.attempt,
    createdAt,
    updatedAt: new Date().toISOString(),
  }
  const setStatus = async (patch: Partial<RunStatus>) => {
    status = { ...status, ...patch, updatedAt: new Date().toISOString() }
    await putJson(store, keys.status, status)
  }
  try {
    await setStatus({ reason: 'loading dataset' })
    const config = parseTrainConfig(env.settings)
    const stream = await store.getStream(env.datasetKey)
    if (!stream) throw new Error(`dataset ${env.datasetKey} not found in ${store.location}`)
    const { items, dataset } = await loadDatasetForTraining({ stream, name: env.datasetKey })
    options.signal?.throwIfAborted()
    await setStatus({ reason: `training on ${items.length} images`, epoch: 0, epochs: config.epochs })
    const metrics = await train({
      items,
      dataset: { ...dataset, source: `${store.location}/${env.datasetKey}` },
      config,
      output: prefixedStore(store, keys.root),
      backend: options.backend,
      resume: true,
      runId: env.runId,
      tty: false,
      log,
      ...(options.packageVersion ? { packageVersion: options.packageVersion } : {}),
      onEvent: async (e) => {
        options.signal?.throwIfAborted()
        if (e.type === 'epoch') await setStatus({ epoch: e.epoch, epochs: e.epochs, reason: `epoch ${e.epoch} of ${e.epochs} done` })
      },
    })
    const gate = qualityGate(metrics, env.maxAgeMae)
    const summary = testSummary(metrics.test)
    if (gate.pass) await promote(store, env.runId, summary)
    log(gate.pass ? `promoted ${env.runId}` : `not promoted: ${gate.reason}`)
    await setStatus({ state: 'succeeded', promoted: gate.pass, reason: gate.reason, ...(summary ? { summary } : {}) })
    return true
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    log(`run failed: ${reason}`)
    await setStatus({ state: 'failed', reason }).catch((e2: unknown) => log(`could not write the failed status: ${String(e2)}`))
    return false
  }
}

export function qualityGate(metrics: TrainMetrics, maxAgeMae: number): { pass: boolean; reason: string } {
  if (!metrics.test) return { pass: false, reason: 'no test split to judge the model by' }
  const mae = metrics.test.ageMae
  return mae <= maxAgeMae
    ? { pass: true, reason: `test age MAE ${mae.toFixed(2)} ≤ ${maxAgeMae}` }
    : { pass: false, reason: `quality gate: test age MAE ${mae.toFixed(2)} > ${maxAgeMae}` }
}

/** Copies the run's model (and metrics) under models/<runId>/, then points models/latest.json at it. */
export async function promote(store: ObjectStore, runId: string, summary?: Record<string, number>): Promise<Promotion> {
  const keys = runKeys(runId)
  const target = modelPrefix(runId)
  await copyPrefix(store, keys.model, target)
  const metrics = await store.get(keys.metrics)
  if (metrics) await store.put(`${target}metrics.json`, metrics, { contentType: 'application/json' })
  const promotion: Promotion = { runId, modelPrefix: target, promotedAt: new Date().toISOString(), ...(summary ? { summary } : {}) }
  await putJson(store, LATEST_MODEL_KEY, promotion)
  return promotion
}
