/**
 * What a resumed attempt writes to status.json (issue 9 item 8): the epoch reached stays while it reloads,
 * the job id is this attempt's, and the dataset's ETag is recorded as an ETag, not as a version id.
 * And what a training run says there after each epoch: the training time left.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunStatus } from '../../core/runs.js'
import { FolderStore } from '../../core/store/folder-store.js'
import { parseJobEnv, runJob } from '../../trainer/job-run.js'
import { corruptImage, makeImages, tarBuffer } from '../../support/images.js'

/** A folder store that keeps every status.json written, in order. */
class RecordingStore extends FolderStore {
  readonly statuses: RunStatus[] = []
  override async put(
    key: string,
    body: Parameters<FolderStore['put']>[1],
    options?: Parameters<FolderStore['put']>[2]
  ): Promise<void> {
    if (key.endsWith('/status.json') && typeof body === 'string') this.statuses.push(JSON.parse(body) as RunStatus)
    return super.put(key, body, options)
  }
}

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'job-status-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('job status on a resumed attempt', () => {
  it("keeps the epoch reached, names this attempt's job, and keeps the ETag as an ETag", async () => {
    // Prepare: attempt 1 reached epoch 2 of 3 under job-1; the dataset cannot be trained on (so the run ends fast)
    const store = new RecordingStore(join(dir, 'store'))
    const key = 'datasets/faces.tar.gz'
    await store.put(key, await tarBuffer([{ name: '20_1_0_2017.jpg', bytes: corruptImage() }], { gzip: true }))
    const t = new Date().toISOString()
    const previous: RunStatus = {
      runId: 'r1',
      state: 'queued',
      dataset: { key, etag: 'abc123' },
      jobId: 'job-1',
      attempt: 1,
      epoch: 2,
      epochs: 3,
      createdAt: t,
      updatedAt: t,
    }
    await store.put('runs/r1/status.json', JSON.stringify(previous))
    store.statuses.length = 0
    const env = parseJobEnv({
      STORE_BUCKET: 'b',
      DATASET_KEY: key,
      DATASET_VERSION: 'abc123',
      RUN_ID: 'r1',
      AWS_BATCH_JOB_ID: 'job-2',
      AWS_BATCH_JOB_ATTEMPT: '2',
      TRAIN_EPOCHS: '3',
    })
    // Act
    await runJob({ env, store, backend: { name: 'cpu', description: 'test' }, log: () => {} })
    // Assess: every status this attempt wrote
    const written = store.statuses
    expect(written.length).toBeGreaterThan(1)
    expect(written[0]).toMatchObject({
      state: 'running',
      reason: 'loading dataset',
      epoch: 2,
      epochs: 3,
      jobId: 'job-2',
      attempt: 2,
    })
    for (const s of written) {
      expect(s.dataset).toEqual({ key, etag: 'abc123' })
      expect(s.jobId).toBe('job-2')
      expect(s.epoch).toBe(2)
    }
  })
})

describe('job status while training', () => {
  it('says after each epoch but the last how much training time is left', async () => {
    // Prepare: a small dataset for 2 epochs
    const store = new RecordingStore(join(dir, 'store-eta'))
    const key = 'datasets/small.tar.gz'
    const images = await makeImages({ count: 32, size: 32, seed: 3 })
    await store.put(
      key,
      await tarBuffer(
        images.map((i) => ({ name: i.name, bytes: i.bytes })),
        { gzip: true }
      )
    )
    const t = new Date().toISOString()
    await store.put(
      'runs/r2/status.json',
      JSON.stringify({ runId: 'r2', state: 'queued', dataset: { key }, createdAt: t, updatedAt: t } satisfies RunStatus)
    )
    const env = parseJobEnv({
      STORE_BUCKET: 'b',
      DATASET_KEY: key,
      RUN_ID: 'r2',
      TRAIN_EPOCHS: '2',
      TRAIN_IMAGE_SIZE: '32',
      TRAIN_BATCH_SIZE: '16',
      TRAIN_WIDTH: '8',
      QUALITY_GATE_MAX_AGE_MAE: '100',
    })
    // Act
    await runJob({ env, store, backend: { name: 'cpu', description: 'test' }, log: () => {} })
    // Assess
    const reasons = store.statuses.map((s) => s.reason)
    expect(reasons).toContainEqual(expect.stringMatching(/^epoch 1 of 2 done, about .+ left$/))
    expect(reasons).toContain('epoch 2 of 2 done')
    expect(store.statuses.at(-1)?.state).toBe('succeeded')
  })
})
