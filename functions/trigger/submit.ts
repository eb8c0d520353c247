/**
 * Starts one planned run at most once: the run's `status.json` is the record that it was started.
 *
 * Order: claim → submit → record the job id. The claim writes status `queued` (no job id yet) with
 * `If-None-Match: *`, so of two deliveries of one event racing each other exactly one creates it and submits;
 * the other sees the claim and stops. A claim whose submit failed (status `failed` without a job id), or whose
 * Lambda died between claim and submit (status `queued` without a job id, older than `staleClaimSeconds`), is
 * taken over with `If-Match` on the ETag that was read, so again only one redelivery resubmits.
 *
 * Where the job runs is the `JobSubmitter`'s business: AWS Batch in `batch-submitter.ts`, a child process in
 * the local runner.
 * @module
 */
import { RunStatus, runKeys } from '../../core/runs.js'
import { PreconditionFailedError, putJson, updateJson, type ObjectStore } from '../../core/store/object-store.js'
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
  /**
   * A claim (`queued` without a job id) older than this is taken to be abandoned by a crashed invocation and
   * may be taken over by a redelivery. Keep it well above the trigger's timeout.
   * @default 300
   */
  readonly staleClaimSeconds?: number
}

/** The submitter failed; the run's status says `failed` with the reason, and a redelivery will try again. */
export class SubmitError extends Error {
  override readonly name = 'SubmitError'
  constructor(
    readonly runId: string,
    cause: unknown
  ) {
    super(`could not start run ${runId}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}

/**
 * What the training job needs to know, as environment variables (the contract of `trainer/bin/job.ts`).
 * `DATASET_VERSION_ID` (versioned buckets) or else `DATASET_ETAG` pin the exact bytes that were uploaded, so
 * a retried attempt trains on the same data even if the key was overwritten since.
 * @example
 * runEnvironment(run)
 * // { STORE_BUCKET: 'b', DATASET_KEY: 'datasets/x.zip', DATASET_VERSION: '…', DATASET_VERSION_ID: '…', RUN_ID: '…' }
 */
export function runEnvironment(run: RunRequest): Record<string, string> {
  return {
    STORE_BUCKET: run.bucket,
    DATASET_KEY: run.datasetKey,
    DATASET_VERSION: run.datasetVersion,
    ...(run.versionId ? { DATASET_VERSION_ID: run.versionId } : {}),
    ...(run.etag ? { DATASET_ETAG: run.etag } : {}),
    RUN_ID: run.runId,
  }
}

/**
 * Submits `run` unless its status already exists (see the module header for the claim).
 * @throws SubmitError after writing status `failed`, when the submitter throws.
 */
export async function submitRun(run: RunRequest, deps: SubmitDeps): Promise<SubmitOutcome> {
  const clock = () => deps.now?.() ?? new Date()
  const now = () => clock().toISOString()
  const key = runKeys(run.runId).status
  const base = {
    runId: run.runId,
    dataset: {
      key: run.datasetKey,
      ...(run.versionId ? { versionId: run.versionId } : {}),
      ...(run.etag ? { etag: run.etag } : {}),
    },
    createdAt: now(),
  }
  const claim: RunStatus = { ...base, state: 'queued', reason: 'submitting the job', updatedAt: now() }
  const claimed = await claimRun(deps.store, key, claim, clock(), deps.staleClaimSeconds ?? 300)
  if (claimed !== true) return { outcome: 'already-started', runId: run.runId, state: claimed }

  let jobId: string
  try {
    jobId = await deps.submitter.submit(run)
  } catch (err) {
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    const reason = `job submission failed: ${what}`
    await putJson(deps.store, key, RunStatus.parse({ ...base, state: 'failed', reason, updatedAt: now() }))
    throw new SubmitError(run.runId, err)
  }
  // The job may already have written `running` (a local child starts at once): keep its state, add the id.
  await updateJson<RunStatus>(deps.store, key, (current) => {
    if (current === undefined || (current.state === 'queued' && current.jobId === undefined)) {
      return RunStatus.parse({ ...base, state: 'queued', jobId, updatedAt: now() })
    }
    return current.jobId === undefined ? { ...current, jobId } : undefined
  })
  return { outcome: 'submitted', runId: run.runId, jobId }
}

/** `true` when this caller now owns the run; otherwise the state of the run someone else started. */
async function claimRun(
  store: ObjectStore,
  key: string,
  claim: RunStatus,
  now: Date,
  staleClaimSeconds: number
): Promise<true | string> {
  try {
    await putJson(store, key, claim, { ifNoneMatch: '*' })
    return true
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err
  }
  const entry = await store.getEntry(key)
  if (entry === undefined) return 'unknown' // deleted in between: leave it to a later delivery
  let existing: RunStatus | undefined
  try {
    const parsed = RunStatus.safeParse(JSON.parse(Buffer.from(entry.body).toString('utf8')))
    existing = parsed.success ? parsed.data : undefined
  } catch {
    existing = undefined
  }
  // An unreadable status still means someone started this run: never start it twice.
  if (existing === undefined) return 'unknown'
  const neverSubmitted = existing.jobId === undefined && existing.state === 'failed'
  const abandoned =
    existing.jobId === undefined &&
    existing.state === 'queued' &&
    now.getTime() - Date.parse(existing.updatedAt) > staleClaimSeconds * 1000
  if (!neverSubmitted && !abandoned) return existing.state
  try {
    await putJson(store, key, claim, { ifMatch: entry.etag })
    return true
  } catch (err) {
    if (err instanceof PreconditionFailedError) return existing.state
    throw err
  }
}
