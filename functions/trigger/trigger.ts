/**
 * Plan + submit for a batch of S3 notification records, with one JSON log line per record. Shared by the
 * Lambda handler (Batch submitter) and the local runner (child-process submitter, records from the embedded
 * S3 server), so both start runs, skip duplicates and write statuses the same way.
 * @module
 */
import type { ObjectStore } from '../../core/store/object-store.js'
import { plan } from './plan.js'
import type { S3EventRecordInput } from './schema.js'
import { submitRun, type JobSubmitter } from './submit.js'

export interface TriggerDeps {
  /** The store holding `runs/`: the bucket the datasets arrive in. */
  readonly store: ObjectStore
  readonly submitter: JobSubmitter
  /** Only records for this bucket start runs. @default - any bucket */
  readonly bucket?: string
  /** Receives one object per record. @default - a JSON line on stdout */
  readonly log?: (line: Readonly<Record<string, unknown>>) => void
  /** @default - the system clock */
  readonly now?: () => Date
}

interface RecordRef {
  readonly bucket: string
  /** Decoded object key. */
  readonly key: string
}

export type RecordResult =
  | (RecordRef & { readonly result: 'submitted'; readonly runId: string; readonly jobId: string })
  | (RecordRef & { readonly result: 'skipped'; readonly reason: string; readonly runId?: string })
  | (RecordRef & { readonly result: 'failed'; readonly runId: string; readonly error: Error })

export const jsonLineLog = (line: Readonly<Record<string, unknown>>) => console.log(JSON.stringify(line))

/**
 * Handles each record in turn; a failing record does not stop the others, it is reported as `failed`.
 * @example
 * const results = await triggerRuns(event.Records, { store, submitter, bucket: 'my-bucket' })
 */
export async function triggerRuns(records: readonly S3EventRecordInput[], deps: TriggerDeps): Promise<RecordResult[]> {
  const log = deps.log ?? jsonLineLog
  const results: RecordResult[] = []
  for (const planned of plan(records, deps.bucket === undefined ? {} : { bucket: deps.bucket })) {
    let result: RecordResult
    if (planned.action === 'skip') {
      result = { result: 'skipped', bucket: planned.bucket, key: planned.key, reason: planned.reason }
    } else {
      const { run } = planned
      const where = { bucket: run.bucket, key: run.datasetKey, runId: run.runId }
      try {
        const outcome = await submitRun(run, deps)
        result =
          outcome.outcome === 'submitted'
            ? { result: 'submitted', ...where, jobId: outcome.jobId }
            : { result: 'skipped', ...where, reason: `run already exists (${outcome.state})` }
      } catch (err) {
        result = { result: 'failed', ...where, error: err instanceof Error ? err : new Error(String(err)) }
      }
    }
    log(logLine(result, deps.now?.() ?? new Date()))
    results.push(result)
  }
  return results
}

function logLine(r: RecordResult, at: Date): Record<string, unknown> {
  const runId = r.runId ? { runId: r.runId } : {}
  const common = { timestamp: at.toISOString(), bucket: r.bucket, key: r.key, ...runId }
  switch (r.result) {
    case 'submitted':
      return { level: 'INFO', message: 'run submitted', ...common, jobId: r.jobId }
    case 'skipped':
      return { level: 'INFO', message: 'record skipped', ...common, reason: r.reason }
    case 'failed':
      return { level: 'ERROR', message: 'run submission failed', ...common, error: r.error.message }
  }
}
