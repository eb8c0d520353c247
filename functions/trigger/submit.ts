/**
 * Starts one planned run at most once: the run's `status.json` is the record that it was started.
 *
 * Order: read status → submit → write `queued` with the job id. A crash between submit and write can, on
 * redelivery, submit a second job; the other order (claim first) could instead leave a run `queued` forever
 * with no job behind it, which is worse for an unattended pipeline. Two deliveries of one event racing within
 * the same second remain possible; S3 conditional writes (If-None-Match) would close that on AWS, but the
 * store interface and s3rver do not offer them.
 *
 * Where the job runs is the `JobSubmitter`'s business: AWS Batch in `batch-submitter.ts`, a child process in
 * the local runner.
 * @module
 */
import { RunStatus, runKeys } from '../../core/runs.js'
import { getJson, putJson, type ObjectStore } from '../../core/store/object-store.js'
import type { RunRequest } from './plan.js'

export interface JobSubmitter {
  /** Starts the training job for `run` with `runEnvironment(run)` in its environment; returns the job's id. */
  submit(run: RunRequest): Promise<string>
}

export type SubmitOutcome =
  | { readonly outcome: 'submitted'; readonly runId: string; readonly jobId: string }
  | { readonly outcome: 'already-started'; readonly runId: string; readonly state: string }

export interface SubmitDeps {
  readonly store: ObjectStore
  readonly submitter: JobSubmitter
  /** @default - the system clock */
  readonly now?: () => Date
}

/** The submitter failed; the run's status says `failed` with the reason, and a redelivery will try again. */
export class SubmitError extends Error {
  override readonly name = 'SubmitError'
  constructor(readonly runId: string, cause: unknown) {
    super(`could not start run ${runId}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}

/**
 * What the training job needs to know, as environment variables (the contract of `trainer/job.ts`).
 * @example
 * runEnvironment(run)
 * // { STORE_BUCKET: 'b', DATASET_KEY: 'datasets/x.zip', DATASET_VERSION: '…', RUN_ID: '…' }
 */
export function runEnvironment(run: RunRequest): Record<string, string> {
  return {
    STORE_BUCKET: run.bucket,
    DATASET_KEY: run.datasetKey,
    DATASET_VERSION: run.datasetVersion,
    RUN_ID: run.runId,
  }
}

/**
 * Submits `run` unless its status already exists. A status left `failed` by a submit that never produced a
 * job (no `jobId`) does not count: that run never started, so it is submitted again.
 * @throws SubmitError after writing status `failed`, when the submitter throws.
 */
export async function submitRun(run: RunRequest, deps: SubmitDeps): Promise<SubmitOutcome> {
  const now = () => (deps.now?.() ?? new Date()).toISOString()
  const key = runKeys(run.runId).status
  const existing = await getJson(deps.store, key)
  if (existing !== undefined) {
    const status = RunStatus.safeParse(existing)
    // An unreadable status still means someone started this run: never start it twice.
    const state = status.success ? status.data.state : 'unknown'
    const neverStarted = status.success && status.data.state === 'failed' && status.data.jobId === undefined
    if (!neverStarted) return { outcome: 'already-started', runId: run.runId, state }
  }

  const base = {
    runId: run.runId,
    dataset: {
      key: run.datasetKey,
      ...(run.versionId ? { versionId: run.versionId } : {}),
      ...(run.etag ? { etag: run.etag } : {}),
    },
    createdAt: now(),
  }
  let jobId: string
  try {
    jobId = await deps.submitter.submit(run)
  } catch (err) {
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    const reason = `job submission failed: ${what}`
    const failed: RunStatus = { ...base, state: 'failed', reason, updatedAt: now() }
    await putJson(deps.store, key, RunStatus.parse(failed))
    throw new SubmitError(run.runId, err)
  }
  const queued: RunStatus = { ...base, state: 'queued', jobId, updatedAt: now() }
  await putJson(deps.store, key, RunStatus.parse(queued))
  return { outcome: 'submitted', runId: run.runId, jobId }
}
