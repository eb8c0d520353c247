/**
 * One training run against the store: status `running` → load the dataset version that was uploaded → train
 * (resuming from the run's checkpoint, so a retried or restarted attempt continues) → metrics, model, report →
 * promotion through the quality gate → status `succeeded`, or `failed` with the reason.
 *
 * `runJobProcess` is the whole process around it (`trainer/bin/job.ts`): environment, engine and device checks
 * whose failures are written to status.json too, and the exit code Batch's retry strategy acts on.
 * @module
 */
import { z } from 'zod'
import { BackendChoice, type EngineReport } from '../core/engine/index.js'
import { testSummary } from '../core/metrics.js'
import { copyPrefix } from '../core/model-io.js'
import { LATEST_MODEL_KEY, modelPrefix, runKeys, RunStatus, type Promotion } from '../core/runs.js'
import {
  PreconditionFailedError,
  getJson,
  updateJson,
  type GetOptions,
  type ObjectStore,
} from '../core/store/object-store.js'
import { prefixedStore } from '../core/store/prefixed-store.js'
import type { TrainMetrics } from '../core/train-documents.js'
import {
  EngineThreads,
  parseTrainConfig,
  replicasFor,
  TRAIN_ENV,
  TRAIN_ENV_VARIABLES,
  TrainConfig,
  trainingThreads,
} from './config.js'
import { replicaRuntime } from './machine.js'
import { deviceProblem, deviceReport, type DeviceReport } from './device.js'
import { JOB_EXIT } from './exit-codes.js'
import { loadDatasetForTraining } from './load.js'
import { describeTimeLeft, TrainingError, train, TrainingStopped } from './train.js'
import { parseSettings } from '../core/zod-issues.js'

/** A run is promoted only when its test age MAE (years) is at most this, unless QUALITY_GATE_MAX_AGE_MAE says otherwise. */
export const DEFAULT_QUALITY_GATE_MAX_AGE_MAE = 12

const JobEnv = z
  .object({
    STORE_URI: z.string().optional(),
    STORE_BUCKET: z.string().optional(),
    DATASET_KEY: z.string().min(1),
    DATASET_VERSION: z.string().optional(),
    DATASET_VERSION_ID: z.string().optional(),
    DATASET_ETAG: z.string().optional(),
    RUN_ID: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'RUN_ID may hold letters, digits, . _ -'),
    ...Object.fromEntries(TRAIN_ENV_VARIABLES.map((name) => [name, z.string().optional()])),
    QUALITY_GATE_MAX_AGE_MAE: z.coerce.number().positive().default(DEFAULT_QUALITY_GATE_MAX_AGE_MAE),
    AGEGENDER_BACKEND: BackendChoice.default('auto'),
    AGEGENDER_THREADS: EngineThreads.optional(),
    AWS_BATCH_JOB_ATTEMPT: z.coerce.number().int().optional(),
    /** Also checkpoint within an epoch every this many minutes (Spot reclaims give 2 minutes' notice). */
    CHECKPOINT_MINUTES: z.coerce.number().positive().default(10),
    /** Set by AWS Batch in the container (and by the local runner): this attempt's job. */
    AWS_BATCH_JOB_ID: z.string().optional(),
    /** Caps on the dataset: total uncompressed bytes and entry count (see trainer/dataset-source.ts). */
    DATASET_MAX_BYTES: z.coerce.number().int().positive().optional(),
    DATASET_MAX_ENTRIES: z.coerce.number().int().positive().optional(),
  })
  .refine((e) => e.STORE_URI || e.STORE_BUCKET, 'set STORE_BUCKET (or STORE_URI)')

export interface JobEnv {
  readonly storeUri: string
  readonly datasetKey: string
  readonly datasetVersion?: string
  /** S3 version id of the uploaded dataset: the job reads exactly that version. */
  readonly datasetVersionId?: string
  /** ETag of the uploaded dataset (unversioned stores): the read fails if the object was replaced since. */
  readonly datasetEtag?: string
  readonly checkpointMinutes: number
  readonly runId: string
  readonly maxAgeMae: number
  readonly backend: BackendChoice
  /** XNNPACK threads on wasm (AGEGENDER_THREADS, else every core, or 1 beside data-parallel replicas). */
  readonly threads: number
  readonly attempt: number
  /** The job of this attempt, when the runtime says (AWS_BATCH_JOB_ID). */
  readonly jobId?: string
  readonly settings: Record<string, string>
  /** Caps on the dataset read; unset ones take the reader's defaults. */
  readonly datasetLimits: { readonly maxTotalBytes?: number; readonly maxEntries?: number }
}

/** The replicas the job's settings ask for, to size the engine's threads; bad settings fail the run later, with a status. */
function jobReplicas(settings: Record<string, string>, backend: BackendChoice): number {
  const config = TrainConfig.safeParse(settings)
  return config.success ? replicasFor(config.data, replicaRuntime(backend)) : 1
}

/** Validates the job environment once; throws naming each bad or missing variable. */
export function parseJobEnv(env: Record<string, string | undefined>): JobEnv {
  const e = parseSettings(JobEnv, env, 'job environment', 'env')
  const variables = e as Record<string, unknown>
  const settings = Object.fromEntries(
    Object.entries(TRAIN_ENV)
      .map(([setting, name]) => [setting, variables[name]])
      .filter((kv): kv is [string, string] => typeof kv[1] === 'string' && kv[1] !== '')
  )
  return {
    storeUri: e.STORE_URI ?? `s3://${e.STORE_BUCKET}`,
    datasetKey: e.DATASET_KEY,
    ...(e.DATASET_VERSION ? { datasetVersion: e.DATASET_VERSION } : {}),
    ...(e.DATASET_VERSION_ID && e.DATASET_VERSION_ID !== 'null' ? { datasetVersionId: e.DATASET_VERSION_ID } : {}),
    ...(e.DATASET_ETAG ? { datasetEtag: e.DATASET_ETAG } : {}),
    checkpointMinutes: e.CHECKPOINT_MINUTES,
    runId: e.RUN_ID,
    maxAgeMae: e.QUALITY_GATE_MAX_AGE_MAE,
    backend: e.AGEGENDER_BACKEND,
    threads: trainingThreads(e.AGEGENDER_THREADS, jobReplicas(settings, e.AGEGENDER_BACKEND)),
    attempt: e.AWS_BATCH_JOB_ATTEMPT ?? 1,
    ...(e.AWS_BATCH_JOB_ID ? { jobId: e.AWS_BATCH_JOB_ID } : {}),
    settings,
    datasetLimits: {
      ...(e.DATASET_MAX_BYTES ? { maxTotalBytes: e.DATASET_MAX_BYTES } : {}),
      ...(e.DATASET_MAX_ENTRIES ? { maxEntries: e.DATASET_MAX_ENTRIES } : {}),
    },
  }
}

export interface RunJobOptions {
  readonly env: JobEnv
  readonly store: ObjectStore
  readonly backend: { name: string; description: string; device?: string; report?: EngineReport }
  readonly packageVersion?: string
  /** Aborted by SIGTERM/SIGINT: the trainer checkpoints after the current step and the run is `interrupted`. */
  readonly signal?: AbortSignal
  readonly log?: (line: string) => void
}

/** `interrupted`: stopped by the signal with a checkpoint saved; a retry resumes. */
export type JobOutcome = 'succeeded' | 'failed' | 'interrupted'

export const exitCodeFor = (outcome: JobOutcome): number =>
  outcome === 'succeeded' ? JOB_EXIT.SUCCEEDED : outcome === 'interrupted' ? JOB_EXIT.INTERRUPTED : JOB_EXIT.FAILED

/** Never throws for run failures: they land in status.json. */
export async function runJob(options: RunJobOptions): Promise<JobOutcome> {
  const { env, store } = options
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const keys = runKeys(env.runId)
  const previous = await getJson(store, keys.status, RunStatus)
  const createdAt = previous?.createdAt ?? new Date().toISOString()
  // What the trigger recorded about the dataset (a versionId only when S3 versioning gave one, the ETag as the
  // ETag); DATASET_VERSION is either of them, so it is not written back under a name that may be wrong.
  const recorded = previous?.dataset.key === env.datasetKey ? previous.dataset : undefined
  const jobId = env.jobId ?? previous?.jobId
  let status: RunStatus = {
    runId: env.runId,
    state: 'running',
    dataset: {
      key: env.datasetKey,
      ...((env.datasetVersionId ?? recorded?.versionId)
        ? { versionId: env.datasetVersionId ?? recorded?.versionId }
        : {}),
      ...((env.datasetEtag ?? recorded?.etag) ? { etag: env.datasetEtag ?? recorded?.etag } : {}),
    },
    ...(jobId ? { jobId } : {}),
    // a resumed attempt still stands at the epoch the earlier one reached, while it reloads
    ...(previous?.epoch !== undefined ? { epoch: previous.epoch } : {}),
    ...(previous?.epochs !== undefined ? { epochs: previous.epochs } : {}),
    attempt: env.attempt,
    createdAt,
    updatedAt: new Date().toISOString(),
  }
  const setStatus = async (patch: Partial<RunStatus>) => {
    status = { ...status, ...patch, updatedAt: new Date().toISOString() }
    // a trigger recording the job id at the same moment must not lose it, nor we our state
    await updateJson<RunStatus>(store, keys.status, (current) => ({
      ...status,
      ...(status.jobId === undefined && current?.jobId ? { jobId: current.jobId } : {}),
    }))
  }
  try {
    await setStatus({ reason: 'loading dataset' })
    const config = parseTrainConfig(env.settings)
    const stream = await openDataset(store, env)
    const { items, dataset } = await loadDatasetForTraining({ stream, name: env.datasetKey }, log, env.datasetLimits)
    options.signal?.throwIfAborted()
    await setStatus({ reason: `training on ${items.length} images`, epoch: status.epoch ?? 0, epochs: config.epochs })
    const metrics = await train({
      items,
      dataset: { ...dataset, source: `${store.location}/${env.datasetKey}` },
      config,
      output: prefixedStore(store, keys.root),
      pretrainedCache: store,
      backend: options.backend,
      resume: true,
      runId: env.runId,
      tty: false,
      log,
      ...(options.packageVersion ? { packageVersion: options.packageVersion } : {}),
      shouldStop: () => options.signal?.aborted === true,
      checkpointEveryMinutes: env.checkpointMinutes,
      onEvent: async (e) => {
        if (e.type === 'epoch') {
          const reason = `epoch ${e.epoch} of ${e.epochs} done${describeTimeLeft(e.secondsLeft)}`
          await setStatus({ epoch: e.epoch, epochs: e.epochs, reason })
        }
      },
    })
    const gate = qualityGate(metrics, env.maxAgeMae)
    const summary = testSummary(metrics.test)
    let promoted = false
    let reason = gate.reason
    if (gate.pass) {
      const result = await promote(store, env.runId, summary, createdAt)
      promoted = result.promoted
      if (!result.promoted) reason = `${gate.reason}; not promoted: ${result.reason}`
    }
    log(promoted ? `promoted ${env.runId}` : `not promoted: ${reason}`)
    await setStatus({ state: 'succeeded', promoted, reason, ...(summary ? { summary } : {}) })
    return 'succeeded'
  } catch (err) {
    if (err instanceof TrainingStopped || (options.signal?.aborted && !(err instanceof TrainingError))) {
      const why = options.signal?.reason instanceof Error ? options.signal.reason.message : 'stopped'
      const where = err instanceof TrainingStopped ? err.message : 'stopped before training'
      log(`run interrupted: ${why}; ${where}`)
      // still `running`: the retried attempt resumes; if there is none, Batch's FAILED event closes the run
      await setStatus({
        interrupted: true,
        reason: `interrupted (${why}): ${where}; a retried attempt resumes from the checkpoint`,
      }).catch((e2: unknown) => log(`could not write the status: ${String(e2)}`))
      return 'interrupted'
    }
    const reason = err instanceof Error ? err.message : String(err)
    log(`run failed: ${reason}`)
    await setStatus({ state: 'failed', reason }).catch((e2: unknown) =>
      log(`could not write the failed status: ${String(e2)}`)
    )
    return 'failed'
  }
}

/** The dataset as uploaded: by version id where the bucket keeps versions, else guarded by the ETag. */
async function openDataset(store: ObjectStore, env: JobEnv) {
  const options: GetOptions = env.datasetVersionId
    ? { versionId: env.datasetVersionId }
    : env.datasetEtag
      ? { ifMatch: env.datasetEtag }
      : {}
  const which = env.datasetVersionId
    ? ` version ${env.datasetVersionId}`
    : env.datasetEtag
      ? ` (ETag ${env.datasetEtag})`
      : ''
  try {
    const stream = await store.getStream(env.datasetKey, options)
    if (!stream) throw new Error(`dataset ${env.datasetKey}${which} not found in ${store.location}`)
    return stream
  } catch (err) {
    if (err instanceof PreconditionFailedError) {
      throw new Error(
        `dataset ${env.datasetKey} was replaced after this run's upload (ETag ${env.datasetEtag} no longer matches); ` +
          'the new upload starts its own run',
        { cause: err }
      )
    }
    throw err
  }
}

export function qualityGate(metrics: TrainMetrics, maxAgeMae: number): { pass: boolean; reason: string } {
  if (!metrics.test) return { pass: false, reason: 'no test split to judge the model by' }
  const mae = metrics.test.ageMae
  return mae <= maxAgeMae
    ? { pass: true, reason: `test age MAE ${mae.toFixed(2)} ≤ ${maxAgeMae}` }
    : { pass: false, reason: `quality gate: test age MAE ${mae.toFixed(2)} > ${maxAgeMae}` }
}

export type PromotionResult =
  | { readonly promoted: true; readonly promotion: Promotion }
  | { readonly promoted: false; readonly reason: string; readonly current: Promotion }

/**
 * Copies the run's model (and metrics) under models/<runId>/, then points models/latest.json at it, unless
 * it already points at a run created later (`runCreatedAt`): the pointer is updated with `If-Match` on the
 * version that was read (or `If-None-Match: *` for the first promotion), so a concurrent promotion is never
 * overwritten unseen; on a conflict the comparison is made again against the new pointer.
 * @param runCreatedAt when this run was created (its status's `createdAt`). @default now
 */
export async function promote(
  store: ObjectStore,
  runId: string,
  summary?: Record<string, number>,
  runCreatedAt: string = new Date().toISOString()
): Promise<PromotionResult> {
  const keys = runKeys(runId)
  const target = modelPrefix(runId)
  await copyPrefix(store, keys.model, target)
  const metrics = await store.get(keys.metrics)
  if (metrics) await store.put(`${target}metrics.json`, metrics, { contentType: 'application/json' })
  const promotion: Promotion = {
    runId,
    modelPrefix: target,
    promotedAt: new Date().toISOString(),
    runCreatedAt,
    ...(summary ? { summary } : {}),
  }
  let newer: Promotion | undefined
  const written = await updateJson<Promotion>(store, LATEST_MODEL_KEY, (current) => {
    newer = current !== undefined && current.runId !== runId && isNewer(current, runCreatedAt) ? current : undefined
    return newer ? undefined : promotion
  })
  if (written) return { promoted: true, promotion }
  return {
    promoted: false,
    reason: `models/latest.json already points at ${newer!.runId}, a run created later (${newer!.runCreatedAt})`,
    current: newer!,
  }
}

/** Whether the promoted `current` comes from a run created after `runCreatedAt`. */
function isNewer(current: Promotion, runCreatedAt: string): boolean {
  const theirs = Date.parse(current.runCreatedAt ?? '')
  return Number.isFinite(theirs) && theirs > Date.parse(runCreatedAt)
}

// ---------------------------------------------------------------------------------------------------------
// The process around runJob
// ---------------------------------------------------------------------------------------------------------

export interface JobProcessDeps {
  /** Initializes TensorFlow.js with the requested backend (`core/engine`'s `initEngine`). */
  readonly initEngine: (
    backend: BackendChoice,
    threads: number
  ) => Promise<{ name: string; description: string; report?: EngineReport }>
  /** Opens the store a URI names (`core/store`'s `storeFromUri`). */
  readonly openStore: (uri: string) => ObjectStore
  /** Whether the initialized backend computes on a GPU (`usesGpu(tf.backend())`). */
  readonly usesGpu: () => boolean | undefined
  /** GPU models the driver lists (`nvidiaGpuNames`). */
  readonly gpuNames: () => Promise<string[]>
  readonly signal?: AbortSignal
  readonly packageVersion?: string
  readonly log?: (line: string) => void
}

/**
 * The training job process: parse the environment, start the engine, check the device, run. Every failure,
 * including those before the run starts (a bad environment, an engine that does not load, no GPU where one
 * was asked for), is written to the run's status.json whenever the run and store can be named at all.
 * @returns the exit code (see `exit-codes.ts`).
 */
export async function runJobProcess(
  processEnv: Record<string, string | undefined>,
  deps: JobProcessDeps
): Promise<number> {
  const log = deps.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  let env: JobEnv
  try {
    env = parseJobEnv(processEnv)
  } catch (err) {
    await failEarly(processEnv, deps, errorMessage(err), log)
    return JOB_EXIT.FAILED
  }
  let store: ObjectStore
  try {
    store = deps.openStore(env.storeUri)
  } catch (err) {
    log(`run failed: cannot open the store ${env.storeUri}: ${errorMessage(err)}`)
    return JOB_EXIT.FAILED
  }
  let backend: { name: string; description: string; device: string; report?: EngineReport }
  try {
    const engine = await deps.initEngine(env.backend, env.threads)
    log(`TensorFlow.js backend: ${engine.description}`)
    const gpuNames = engine.name === 'tensorflow' ? await deps.gpuNames() : []
    const device: DeviceReport = deviceReport(engine.name, deps.usesGpu(), gpuNames)
    log(`device: ${device.description}`)
    const problem = deviceProblem(env.backend, device, gpuNames)
    if (problem) throw new Error(problem)
    backend = { ...engine, device: device.description }
  } catch (err) {
    const reason = `could not start training: ${errorMessage(err)}`
    log(`run failed: ${reason}`)
    await writeFailed(store, env.runId, env.datasetKey, reason, env.attempt).catch((e2: unknown) =>
      log(`could not write the failed status: ${errorMessage(e2)}`)
    )
    return JOB_EXIT.FAILED
  }
  const outcome = await runJob({
    env,
    store,
    backend,
    log,
    ...(deps.signal ? { signal: deps.signal } : {}),
    ...(deps.packageVersion ? { packageVersion: deps.packageVersion } : {}),
  })
  return exitCodeFor(outcome)
}

/** The environment did not parse: record why in status.json if it still names a run and a store. */
async function failEarly(
  processEnv: Record<string, string | undefined>,
  deps: Pick<JobProcessDeps, 'openStore'>,
  reason: string,
  log: (line: string) => void
): Promise<void> {
  log(`run failed: ${reason}`)
  const runId = processEnv.RUN_ID
  const uri = processEnv.STORE_URI || (processEnv.STORE_BUCKET ? `s3://${processEnv.STORE_BUCKET}` : undefined)
  if (!runId || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(runId) || !uri) {
    log('no RUN_ID and store to record the failure in; only this log has it')
    return
  }
  const attempt = Number.parseInt(processEnv.AWS_BATCH_JOB_ATTEMPT ?? '', 10)
  await writeFailed(
    deps.openStore(uri),
    runId,
    processEnv.DATASET_KEY ?? '',
    reason,
    Number.isFinite(attempt) ? attempt : undefined
  ).catch((err: unknown) => log(`could not write the failed status: ${errorMessage(err)}`))
}

/** Marks the run failed, keeping what status.json already says (job id, creation time, dataset). */
export async function writeFailed(
  store: ObjectStore,
  runId: string,
  datasetKey: string,
  reason: string,
  attempt?: number
): Promise<void> {
  const now = new Date().toISOString()
  await updateJson<RunStatus>(store, runKeys(runId).status, (current) => ({
    runId,
    dataset: { key: datasetKey },
    createdAt: now,
    ...current,
    ...(attempt === undefined ? {} : { attempt }),
    state: 'failed',
    reason,
    updatedAt: now,
  }))
}

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err))
