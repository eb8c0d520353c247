/**
 * Pure planning: which S3 notification records start a training run, and which run.
 *
 * The run id comes from the dataset key and its object version (`versionId`, else the ETag, else the
 * sequencer), so a redelivered notification names the same run and `submit.ts` can refuse to start it twice.
 * @module
 */
import { isDatasetKey, runIdFor } from '../../core/runs.js'
import type { S3EventRecordInput } from './schema.js'

/** Everything a submitter needs to start one run. */
export interface RunRequest {
  readonly runId: string
  /** AWS Batch job name: letters, digits, `-` and `_`, at most 128 characters. */
  readonly jobName: string
  readonly bucket: string
  /** Decoded object key (`datasets/UTK faces.zip`). */
  readonly datasetKey: string
  /** What identifies the object version: the version id, else the ETag, else the sequencer. */
  readonly datasetVersion: string
  readonly versionId?: string
  readonly etag?: string
}

export type PlannedRecord =
  | { readonly action: 'run'; readonly run: RunRequest }
  | { readonly action: 'skip'; readonly bucket: string; readonly key: string; readonly reason: string }

export interface PlanOptions {
  /**
   * Records for other buckets are skipped: the trainer reads the dataset from this one.
   * @default - any bucket
   */
  readonly bucket?: string
}

const JOB_NAME_MAX = 128

/**
 * Decides, for each record, to start a run or to skip it with a reason.
 * @example
 * plan(event.Records, { bucket: 'my-bucket' })
 * // [{ action: 'run', run: { runId: 'UTK-faces-3f2a9c01be', jobName: 'train-UTK-faces-3f2a9c01be', … } }]
 */
export function plan(records: readonly S3EventRecordInput[], options: PlanOptions = {}): PlannedRecord[] {
  return records.map((record) => planRecord(record, options))
}

function planRecord(record: S3EventRecordInput, options: PlanOptions): PlannedRecord {
  const bucket = record.s3.bucket.name
  const { object } = record.s3
  let key: string
  try {
    key = decodeEventKey(object.key)
  } catch {
    return { action: 'skip', bucket, key: object.key, reason: 'key is not valid URL encoding' }
  }
  const skip = (reason: string): PlannedRecord => ({ action: 'skip', bucket, key, reason })
  if (!record.eventName.startsWith('ObjectCreated:')) {
    return skip(`not an object-created event (${record.eventName})`)
  }
  if (options.bucket !== undefined && bucket !== options.bucket) {
    return skip(`bucket ${bucket} is not ${options.bucket}`)
  }
  if (!isDatasetKey(key)) return skip('not a dataset key (datasets/*.zip|.tar|.tar.gz|.tgz)')
  if (object.size === 0) return skip('empty object')
  const versionId = nonEmpty(object.versionId === 'null' ? undefined : object.versionId)
  const etag = nonEmpty(object.eTag?.replace(/"/g, ''))
  const datasetVersion = versionId ?? etag ?? nonEmpty(object.sequencer)
  if (datasetVersion === undefined) {
    return skip('record has no versionId, eTag or sequencer to identify the object version')
  }
  const runId = runIdFor(key, datasetVersion)
  return {
    action: 'run',
    run: {
      runId,
      jobName: jobNameFor(runId),
      bucket,
      datasetKey: key,
      datasetVersion,
      ...(versionId ? { versionId } : {}),
      ...(etag ? { etag } : {}),
    },
  }
}

/** S3 notifications URL-encode keys with spaces as `+` (`datasets/my+faces%282%29.zip`). */
export function decodeEventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '))
}

/** `train-<runId>`, reduced to what Batch accepts (`[A-Za-z0-9_-]`, first character alphanumeric, ≤ 128). */
export function jobNameFor(runId: string): string {
  return `train-${runId}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, JOB_NAME_MAX)
}

const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v)
