/**
 * Where a training run and the promoted model live in the store, and the run status document.
 *
 * ```
 * datasets/<name>.zip|.tar|.tar.gz   uploads; each new object version starts one run
 * runs/<runId>/status.json           RunStatus: queued → running → succeeded | failed (with reason)
 * runs/<runId>/metrics.json          see trainer docs
 * runs/<runId>/report.html           human-readable report with plots
 * runs/<runId>/model/                TF.js layers model (model.json, weights) + meta.json
 * runs/<runId>/checkpoint/           latest epoch checkpoint, for resuming a retried attempt
 * models/<runId>/                    copy of a promoted run's model/ (+ metrics.json)
 * models/latest.json                 Promotion: which run the predict endpoint serves
 * ```
 *
 * And reading runs back: every run's status, one run's status and the current promotion (the CLI, the local
 * runner and the local system's restart recovery).
 * @module
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { getJson, InvalidDocumentError, type ObjectStore } from './store/object-store.js'

export const DATASET_PREFIX = 'datasets/'
export const DATASET_SUFFIXES = ['.zip', '.tar', '.tar.gz', '.tgz'] as const
export const LATEST_MODEL_KEY = 'models/latest.json'

export const runKeys = (runId: string) => {
  const root = `runs/${runId}/`
  return {
    root,
    status: `${root}status.json`,
    metrics: `${root}metrics.json`,
    report: `${root}report.html`,
    model: `${root}model/`,
    checkpoint: `${root}checkpoint/`,
    log: `${root}log.txt`,
  }
}

export const modelPrefix = (runId: string) => `models/${runId}/`

/** A key under `datasets/` ending in an archive suffix, in any letter case (`.ZIP`, `.Tar.Gz` too). */
export const isDatasetKey = (key: string) =>
  key.startsWith(DATASET_PREFIX) && DATASET_SUFFIXES.some((s) => key.toLowerCase().endsWith(s))

export const RunState = z.enum(['queued', 'running', 'succeeded', 'failed'])
export type RunState = z.infer<typeof RunState>

export const RunStatus = z.object({
  runId: z.string().min(1),
  state: RunState,
  dataset: z.object({ key: z.string(), versionId: z.string().optional(), etag: z.string().optional() }),
  /** Batch job id, or local runner's process id. */
  jobId: z.string().optional(),
  /** Why the run failed (state `failed`), or a progress note. */
  reason: z.string().optional(),
  /** The attempt stopped on a signal after saving a checkpoint: a retried (or restarted) attempt resumes. */
  interrupted: z.boolean().optional(),
  /** Epoch reached so far, while running. */
  epoch: z.number().int().optional(),
  epochs: z.number().int().optional(),
  attempt: z.number().int().optional(),
  /** Exit code of the last attempt's container, when Batch reported the job failed. */
  exitCode: z.number().int().optional(),
  /** Attempts Batch made, when it reported the job failed. */
  attempts: z.number().int().optional(),
  /** Headline test metrics, on success. */
  summary: z.record(z.string(), z.number()).optional(),
  promoted: z.boolean().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
})
export type RunStatus = z.infer<typeof RunStatus>

export const Promotion = z.object({
  runId: z.string().min(1),
  /** Store prefix holding model.json, its weights and meta.json. */
  modelPrefix: z.string(),
  promotedAt: z.string(),
  /**
   * When the promoted run was created (its upload was noticed): promotion never replaces a pointer to a run
   * created later, so a slow older run finishing last does not win.
   */
  runCreatedAt: z.string().optional(),
  summary: z.record(z.string(), z.number()).optional(),
})
export type Promotion = z.infer<typeof Promotion>

/**
 * A run id that is the same for the same dataset object version, so a repeated event never starts two runs:
 * `<dataset name>-<first 10 hex of sha256(key + version)>`.
 */
export function runIdFor(key: string, version: string): string {
  const base = key
    .slice(DATASET_PREFIX.length)
    .replace(/\.(zip|tar|tar\.gz|tgz)$/i, '')
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
  const hash = createHash('sha256').update(`${key}\u0000${version}`).digest('hex').slice(0, 10)
  return `${base || 'dataset'}-${hash}`
}

export const isTerminal = (state: RunState) => state === 'succeeded' || state === 'failed'

export type RunListing =
  | { readonly runId: string; readonly ok: true; readonly status: RunStatus }
  | { readonly runId: string; readonly ok: false; readonly error: string }

const STATUS_KEY = /^runs\/([^/]+)\/status\.json$/

/**
 * Every `runs/<runId>/status.json`, parsed; an unreadable one is listed with the reason instead of failing
 * the whole listing. In run id order.
 */
export async function listRuns(store: ObjectStore): Promise<RunListing[]> {
  const keys = (await store.list('runs/')).flatMap((o) => {
    const runId = STATUS_KEY.exec(o.key)?.[1]
    return runId === undefined ? [] : [runId]
  })
  return Promise.all(keys.map((runId) => readRunListing(store, runId)))
}

async function readRunListing(store: ObjectStore, runId: string): Promise<RunListing> {
  try {
    const status = await readRun(store, runId)
    return status ? { runId, ok: true, status } : { runId, ok: false, error: 'status.json disappeared' }
  } catch (err) {
    return { runId, ok: false, error: err instanceof Error ? err.message : String(err) }
  }
}

/**
 * The run's status, `undefined` when it has none; throws an {@link InvalidDocumentError} when status.json is
 * not a valid RunStatus.
 *
 * An invalid document is read again a few times first. Every store replaces an object whole (S3 itself; the
 * folder store and the embedded S3 server write a temporary file and rename it into place), so a reader never
 * sees a half-written one: the retries only cover a store that does not.
 */
export async function readRun(store: ObjectStore, runId: string, retries = 3): Promise<RunStatus | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await getJson(store, runKeys(runId).status, RunStatus)
    } catch (err) {
      if (!(err instanceof InvalidDocumentError) || attempt >= retries) throw err
      await new Promise((done) => setTimeout(done, 100))
    }
  }
}

/** What `models/latest.json` says the predict endpoint serves, if anything (or if it is unreadable). */
export async function readPromotion(store: ObjectStore): Promise<Promotion | undefined> {
  return getJson(store, LATEST_MODEL_KEY, Promotion).catch(() => undefined)
}
