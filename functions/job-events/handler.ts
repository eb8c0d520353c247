/**
 * Closes runs whose Batch job failed where the job itself could not say so: out-of-memory kills, attempt
 * timeouts, a Spot reclaim on the last attempt, image pull errors, and jobs cancelled while stuck RUNNABLE
 * (the queue's job state time limit actions). For every FAILED job it marks the run `failed` with Batch's
 * status reason, the container's reason and exit code, and the number of attempts.
 *
 * A status the job already closed is respected: `succeeded` is left alone; a `failed` written by the job keeps
 * its own (more precise) reason and gains the exit code and attempts. Writes use `If-Match`, so a status the
 * job writes at the same moment is never lost.
 * @module
 */
import { RunStatus, runKeys } from '../../core/runs.js'
import { updateJson, type ObjectStore } from '../../core/store/object-store.js'
import { parseJobEvent, type BatchJobStateChange } from './schema.js'

export interface JobEventDeps {
  /** The bucket holding `runs/`. */
  readonly store: ObjectStore
  /** @default - a JSON line on stdout */
  readonly log?: (line: Readonly<Record<string, unknown>>) => void
  /** @default - the system clock */
  readonly now?: () => Date
}

export type JobEventResult =
  | { readonly result: 'recorded'; readonly runId: string; readonly reason: string }
  | { readonly result: 'skipped'; readonly reason: string; readonly runId?: string }

const JOB_NAME_PREFIX = 'train-'

/** The run a job belongs to: `RUN_ID` in its environment, else its name (`train-<runId>`, see trigger/plan.ts). */
export function runIdOf(detail: BatchJobStateChange['detail']): string | undefined {
  const fromEnv = detail.container?.environment.find((e) => e.name === 'RUN_ID')?.value
  if (fromEnv) return fromEnv
  return detail.jobName.startsWith(JOB_NAME_PREFIX) ? detail.jobName.slice(JOB_NAME_PREFIX.length) : undefined
}

/**
 * Why the job failed, in one line: Batch's reason, the last attempt's container reason and exit code.
 * @example "Essential container in task exited; container: OutOfMemoryError: Container killed due to memory usage; exit code 137; 1 attempt"
 */
export function failureReason(detail: BatchJobStateChange['detail']): {
  reason: string
  exitCode?: number
  attempts: number
} {
  const last = detail.attempts.at(-1)
  const container = last?.container ?? detail.container
  const exitCode = container?.exitCode
  const attempts = detail.attempts.length
  const parts = [
    `Batch job ${detail.jobId} failed: ${detail.statusReason ?? last?.statusReason ?? 'no reason given'}`,
    ...(container?.reason ? [`container: ${container.reason}`] : []),
    ...(exitCode === undefined ? [] : [`exit code ${exitCode}`]),
    attempts === 0 ? 'never started' : `${attempts} attempt${attempts === 1 ? '' : 's'}`,
  ]
  return { reason: parts.join('; '), ...(exitCode === undefined ? {} : { exitCode }), attempts }
}

export function createJobEventHandler(deps: JobEventDeps) {
  const log = deps.log ?? ((line: Readonly<Record<string, unknown>>) => console.log(JSON.stringify(line)))
  return async (event: unknown): Promise<JobEventResult> => {
    const { detail } = parseJobEvent(event)
    const result = await handle(detail, deps)
    log({
      level: result.result === 'recorded' ? 'WARN' : 'INFO',
      message: result.result === 'recorded' ? 'run failed' : 'event skipped',
      timestamp: (deps.now?.() ?? new Date()).toISOString(),
      jobId: detail.jobId,
      status: detail.status,
      ...result,
    })
    return result
  }
}

async function handle(detail: BatchJobStateChange['detail'], deps: JobEventDeps): Promise<JobEventResult> {
  if (detail.status !== 'FAILED') return { result: 'skipped', reason: `status ${detail.status} needs no action` }
  const runId = runIdOf(detail)
  if (!runId || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(runId)) {
    return { result: 'skipped', reason: `job ${detail.jobName} names no run` }
  }
  const failure = failureReason(detail)
  const now = (deps.now?.() ?? new Date()).toISOString()
  let outcome: JobEventResult = { result: 'recorded', runId, reason: failure.reason }
  await updateJson<RunStatus>(
    deps.store,
    runKeys(runId).status,
    (raw) => {
      const current = raw === undefined ? undefined : RunStatus.safeParse(raw)
      if (current?.success && current.data.state === 'succeeded') {
        outcome = { result: 'skipped', runId, reason: 'the run already succeeded' }
        return undefined
      }
      const base: RunStatus = current?.success
        ? current.data
        : { runId, state: 'failed', dataset: { key: datasetKeyOf(detail) }, createdAt: now, updatedAt: now }
      const keepOwnReason = base.state === 'failed' && base.reason !== undefined && raw !== undefined
      const reason = keepOwnReason ? base.reason! : failure.reason
      outcome = { result: 'recorded', runId, reason }
      return {
        ...base,
        state: 'failed',
        reason,
        jobId: base.jobId ?? detail.jobId,
        attempts: failure.attempts,
        ...(failure.exitCode === undefined ? {} : { exitCode: failure.exitCode }),
        updatedAt: now,
      }
    },
    { createFirst: true }
  ) // the role has no s3:ListBucket: never read a status.json that may not exist
  return outcome
}

const datasetKeyOf = (detail: BatchJobStateChange['detail']) =>
  detail.container?.environment.find((e) => e.name === 'DATASET_KEY')?.value ?? ''
