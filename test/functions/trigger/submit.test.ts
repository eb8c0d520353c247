/** submitRun(): the status document decides whether a run starts, with any JobSubmitter (here a fake one). */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RunStatus, runKeys } from '../../../core/runs.js'
import { FolderStore } from '../../../core/store/folder-store.js'
import { getJson, putJson } from '../../../core/store/object-store.js'
import type { RunRequest } from '../../../functions/trigger/plan.js'
import { runEnvironment, SubmitError, submitRun, type JobSubmitter } from '../../../functions/trigger/submit.js'

const run: RunRequest = {
  runId: 'faces-0123456789',
  jobName: 'train-faces-0123456789',
  bucket: 'datasets-bucket',
  datasetKey: 'datasets/faces.zip',
  datasetVersion: 'v1',
  versionId: 'v1',
  etag: 'abc',
}
const now = () => new Date('2026-11-20T10:00:00.000Z')
const statusKey = runKeys(run.runId).status

let root: string
let store: FolderStore
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'submit-'))
  store = new FolderStore(root)
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

/** A status document as an earlier delivery (or the trainer) left it. */
const earlier = (fields: Partial<RunStatus>) =>
  putJson(store, statusKey, {
    runId: run.runId,
    dataset: { key: run.datasetKey },
    createdAt: 'x',
    updatedAt: 'x',
    ...fields,
  })

const submitting = (jobId: string) => ({ submit: vi.fn<JobSubmitter['submit']>().mockResolvedValue(jobId) })

describe('submitRun', () => {
  it('submits a new run and records it as queued with the job id', async () => {
    const submitter = submitting('job-1')

    const outcome = await submitRun(run, { store, submitter, now })

    expect(outcome).toEqual({ outcome: 'submitted', runId: run.runId, jobId: 'job-1' })
    expect(submitter.submit).toHaveBeenCalledWith(run)
    expect(await getJson(store, statusKey, RunStatus)).toEqual({
      runId: run.runId,
      state: 'queued',
      jobId: 'job-1',
      dataset: { key: 'datasets/faces.zip', versionId: 'v1', etag: 'abc' },
      createdAt: '2026-11-20T10:00:00.000Z',
      updatedAt: '2026-11-20T10:00:00.000Z',
    })
  })

  it.each(['queued', 'running', 'succeeded'] as const)('does not start a run whose status is %s', async (state) => {
    await earlier({ state, jobId: 'job-0' })
    const submitter = submitting('job-2')

    const outcome = await submitRun(run, { store, submitter, now })

    expect(outcome).toEqual({ outcome: 'already-started', runId: run.runId, state })
    expect(submitter.submit).not.toHaveBeenCalled()
  })

  it('does not start a run whose status exists but cannot be read as a RunStatus', async () => {
    await putJson(store, statusKey, { something: 'else' })
    const submitter = submitting('job-2')

    expect(await submitRun(run, { store, submitter, now })).toMatchObject({
      outcome: 'already-started',
      state: 'unknown',
    })
    expect(submitter.submit).not.toHaveBeenCalled()
  })

  it('records a failed submission with its reason and rethrows', async () => {
    const submitter = { submit: vi.fn<JobSubmitter['submit']>().mockRejectedValue(new Error('Rate exceeded')) }

    const attempt = submitRun(run, { store, submitter, now })

    await expect(attempt).rejects.toThrow(SubmitError)
    await expect(attempt).rejects.toThrow(`could not start run ${run.runId}: Rate exceeded`)
    expect(await getJson(store, statusKey, RunStatus)).toMatchObject({
      state: 'failed',
      reason: 'job submission failed: Error: Rate exceeded',
    })
  })

  it('tries again when the only earlier attempt failed before a job existed', async () => {
    const failing = { submit: vi.fn<JobSubmitter['submit']>().mockRejectedValue(new Error('Rate exceeded')) }
    await expect(submitRun(run, { store, submitter: failing, now })).rejects.toThrow()
    const submitter = submitting('job-3')

    const outcome = await submitRun(run, { store, submitter, now })

    expect(outcome).toEqual({ outcome: 'submitted', runId: run.runId, jobId: 'job-3' })
    expect(await getJson(store, statusKey, RunStatus)).toMatchObject({ state: 'queued', jobId: 'job-3' })
    expect(await getJson(store, statusKey, RunStatus)).not.toHaveProperty('reason')
  })

  it('does not retry a run that failed after its job started', async () => {
    await earlier({ state: 'failed', jobId: 'job-0', reason: 'out of memory' })
    const submitter = submitting('job-4')

    expect(await submitRun(run, { store, submitter, now })).toMatchObject({
      outcome: 'already-started',
      state: 'failed',
    })
    expect(submitter.submit).not.toHaveBeenCalled()
  })
})

describe('submitRun under concurrent deliveries', () => {
  it('two deliveries of one event racing each other submit one job', async () => {
    const submitter = submitting('job-5')

    const outcomes = await Promise.all([1, 2, 3].map(() => submitRun(run, { store, submitter, now })))

    expect(submitter.submit).toHaveBeenCalledTimes(1)
    expect(outcomes.filter((o) => o.outcome === 'submitted')).toHaveLength(1)
    expect(outcomes.filter((o) => o.outcome === 'already-started')).toHaveLength(2)
    expect(await getJson(store, statusKey, RunStatus)).toMatchObject({ state: 'queued', jobId: 'job-5' })
  })

  it('leaves a fresh claim (queued, no job id yet) to the invocation that made it', async () => {
    await earlier({ state: 'queued', updatedAt: '2026-11-20T09:59:00.000Z' })
    const submitter = submitting('job-6')

    expect(await submitRun(run, { store, submitter, now })).toMatchObject({
      outcome: 'already-started',
      state: 'queued',
    })
    expect(submitter.submit).not.toHaveBeenCalled()
  })

  it('takes over a claim abandoned before its submit (older than staleClaimSeconds), once', async () => {
    await earlier({ state: 'queued', updatedAt: '2026-11-20T09:40:00.000Z' })
    const submitter = submitting('job-7')

    const outcomes = await Promise.all(
      [1, 2].map(() => submitRun(run, { store, submitter, now, staleClaimSeconds: 300 }))
    )

    expect(submitter.submit).toHaveBeenCalledTimes(1)
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(['already-started', 'submitted'])
    expect(await getJson(store, statusKey, RunStatus)).toMatchObject({ state: 'queued', jobId: 'job-7' })
  })

  it('keeps the state a fast job already wrote and adds the job id', async () => {
    // a local child process can write `running` before submit() returns
    const submitter = {
      submit: vi.fn<JobSubmitter['submit']>().mockImplementation(async () => {
        const claim = (await getJson(store, statusKey, RunStatus))!
        await putJson(store, statusKey, { ...claim, state: 'running', reason: 'loading dataset' })
        return 'pid-42'
      }),
    }

    await submitRun(run, { store, submitter, now })

    expect(await getJson(store, statusKey, RunStatus)).toMatchObject({ state: 'running', jobId: 'pid-42' })
  })
})

describe('runEnvironment', () => {
  it('passes the trainer its inputs', () => {
    expect(runEnvironment(run)).toEqual({
      STORE_BUCKET: 'datasets-bucket',
      DATASET_KEY: 'datasets/faces.zip',
      DATASET_VERSION: 'v1',
      DATASET_VERSION_ID: 'v1',
      DATASET_ETAG: 'abc',
      RUN_ID: 'faces-0123456789',
    })
  })
})
