import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readRun, type RunStatus } from '../../core/runs.js'
import { FolderStore } from '../../core/store/folder-store.js'
import { putJson } from '../../core/store/object-store.js'
import { recoverRuns, type DatasetVersion } from '../../local/recovery.js'

const status = (runId: string, patch: Partial<RunStatus>): RunStatus => ({
  runId,
  state: 'running',
  dataset: { key: `datasets/${runId}.zip`, etag: `etag-${runId}` },
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt: '2025-01-01T00:00:00.000Z',
  ...patch,
})

describe('restart recovery', () => {
  let dir: string
  let store: FolderStore
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'recovery-'))
    store = new FolderStore(dir)
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  it('queues unfinished runs again, fails those whose dataset is gone or replaced, leaves finished ones', async () => {
    // Prepare
    const runs = [
      status('midway', { state: 'running', epoch: 2, epochs: 5, attempt: 1, createdAt: '2025-01-01T00:00:02.000Z' }),
      status('waiting', { state: 'queued', jobId: 'local-1', createdAt: '2025-01-01T00:00:01.000Z' }),
      status('gone', { state: 'running' }),
      status('replaced', { state: 'queued' }),
      status('done', { state: 'succeeded' }),
      status('broken', { state: 'failed', reason: 'no images' }),
    ]
    for (const s of runs) await putJson(store, `runs/${s.runId}/status.json`, s)
    const objects: Record<string, DatasetVersion> = {
      'datasets/midway.zip': { etag: 'etag-midway' },
      'datasets/waiting.zip': { etag: 'etag-waiting' },
      'datasets/replaced.zip': { etag: 'a-newer-upload' },
    }
    // Act
    const recovery = await recoverRuns({ store, bucket: 'b', datasetVersion: async (key) => objects[key] })
    // Assess: oldest first, the interrupted one as its next attempt
    expect(recovery.resume.map((r) => [r.run.runId, r.attempt, r.epoch])).toEqual([
      ['waiting', 1, undefined],
      ['midway', 2, 2],
    ])
    expect(recovery.resume[1]!.run).toMatchObject({
      bucket: 'b',
      datasetKey: 'datasets/midway.zip',
      datasetVersion: 'etag-midway',
      jobName: 'train-midway',
    })
    expect(await readRun(store, 'midway')).toMatchObject({
      state: 'queued',
      reason: 'resuming after a restart (from epoch 2)',
      epoch: 2,
    })
    expect(recovery.failed.map((f) => f.runId).sort()).toEqual(['gone', 'replaced'])
    expect(await readRun(store, 'gone')).toMatchObject({
      state: 'failed',
      reason: expect.stringMatching(/no longer in the bucket/),
    })
    expect(await readRun(store, 'replaced')).toMatchObject({
      state: 'failed',
      reason: expect.stringMatching(/replaced by a newer upload/),
    })
    expect((await readRun(store, 'done'))?.state).toBe('succeeded')
    expect((await readRun(store, 'broken'))?.reason).toBe('no images')
  })

  it('has nothing to do in an empty bucket', async () => {
    expect(await recoverRuns({ store, bucket: 'b', datasetVersion: async () => undefined })).toEqual({
      resume: [],
      failed: [],
    })
  })
})
