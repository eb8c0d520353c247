/**
 * Restart recovery: runs left `queued` or `running` by an earlier session (stopped, crashed, or killed with
 * the machine) are queued again and resume from their checkpoint; on AWS, Batch's retry does this job.
 *
 * A run can only resume on the data it started with. When its dataset object is gone, or was replaced by a
 * newer upload (the bucket keeps no versions, and the new upload has started its own run), the run is marked
 * `failed` with that reason instead: no run stays `running` forever.
 * @module
 */
import { listRuns, runKeys, type RunStatus } from '../core/runs.js'
import { putJson, type ObjectStore } from '../core/store/object-store.js'
import { jobNameFor, type RunRequest } from '../functions/trigger/index.js'

/** What identifies the object's current version: its version id, else its ETag (no quotes). */
export interface DatasetVersion {
  readonly versionId?: string
  readonly etag?: string
}

export interface RecoveryDeps {
  readonly store: ObjectStore
  /** The bucket the runs' datasets are in (for the run requests). */
  readonly bucket: string
  /** The dataset object's current version, `undefined` when it is gone (`S3Store.head`). */
  readonly datasetVersion: (key: string) => Promise<DatasetVersion | undefined>
  /** @default - the system clock */
  readonly now?: () => Date
}

export interface RecoveredRun {
  readonly run: RunRequest
  /** The attempt to start: one more than the interrupted one. */
  readonly attempt: number
  /** Epochs the run had finished, as far as its status knows. */
  readonly epoch?: number
}

export interface Recovery {
  /** Runs to queue again, oldest first. */
  readonly resume: RecoveredRun[]
  /** Runs that cannot resume, now `failed` with `reason`. */
  readonly failed: { readonly runId: string; readonly reason: string }[]
}

/**
 * Finds the unfinished runs, rewrites their status (`queued` to resume, or `failed`) and returns what to do.
 * @example
 * const { resume } = await recoverRuns({ store, bucket, datasetVersion: (k) => s3Store.head(k) })
 * for (const r of resume) await runner.submit(r.run, { attempt: r.attempt })
 */
export async function recoverRuns(deps: RecoveryDeps): Promise<Recovery> {
  const now = () => (deps.now?.() ?? new Date()).toISOString()
  const unfinished = (await listRuns(deps.store))
    .flatMap((l) => (l.ok && (l.status.state === 'queued' || l.status.state === 'running') ? [l.status] : []))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
  const recovery: Recovery = { resume: [], failed: [] }
  for (const status of unfinished) {
    const key = status.dataset.key
    const started = status.dataset.versionId ?? status.dataset.etag
    const current = await deps.datasetVersion(key)
    const currentVersion = current?.versionId ?? current?.etag
    let reason: string | undefined
    if (current === undefined) reason = `interrupted, and cannot resume: dataset ${key} is no longer in the bucket`
    else if (started !== undefined && currentVersion !== undefined && started !== currentVersion) {
      reason = `interrupted, and cannot resume: dataset ${key} was replaced by a newer upload, which has its own run`
    }
    const write = (patch: Pick<RunStatus, 'state' | 'reason'>) =>
      putJson(deps.store, runKeys(status.runId).status, { ...status, ...patch, updatedAt: now() } satisfies RunStatus)
    if (reason !== undefined) {
      await write({ state: 'failed', reason })
      recovery.failed.push({ runId: status.runId, reason })
      continue
    }
    const datasetVersion = started ?? currentVersion ?? 'unknown'
    await write({
      state: 'queued',
      reason:
        status.state === 'running' || status.epoch !== undefined
          ? `resuming after a restart (from epoch ${status.epoch ?? 0})`
          : 'queued again after a restart',
    })
    recovery.resume.push({
      run: {
        runId: status.runId,
        jobName: jobNameFor(status.runId),
        bucket: deps.bucket,
        datasetKey: key,
        datasetVersion,
        ...(status.dataset.versionId ? { versionId: status.dataset.versionId } : {}),
        ...(status.dataset.etag ? { etag: status.dataset.etag } : {}),
      },
      attempt: (status.attempt ?? 1) + (status.state === 'running' || status.epoch !== undefined ? 1 : 0),
      ...(status.epoch !== undefined ? { epoch: status.epoch } : {}),
    })
  }
  return recovery
}
