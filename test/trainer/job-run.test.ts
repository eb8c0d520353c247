/**
 * The training job process against a real S3 server (embedded s3rver): every way it can end is written to
 * status.json, it reads the dataset version that was uploaded, it checks the GPU it was promised, and
 * promotion never lets an older run replace a newer one.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { LATEST_MODEL_KEY, Promotion, RunStatus, runKeys } from '../../core/runs.js'
import { getJson, putJson } from '../../core/store/object-store.js'
import { S3Store } from '../../core/store/s3-store.js'
import { TrainMetrics } from '../../core/train-documents.js'
import { deviceProblem, deviceReport, usesGpu } from '../../trainer/device.js'
import { JOB_EXIT } from '../../trainer/exit-codes.js'
import { promote, runJobProcess, type JobProcessDeps } from '../../trainer/job-run.js'
import { makeImages, zipBuffer } from '../../support/images.js'
import { useTestS3 } from '../support/s3-server.js'

const BUCKET = 'job-run'
const s3 = useTestS3(BUCKET)
let store: S3Store
let archive: Buffer
const lines: string[] = []

beforeAll(async () => {
  store = new S3Store({ bucket: BUCKET, client: s3().client() })
  const images = await makeImages({ count: 80, size: 40, seed: 9 })
  archive = await zipBuffer(images.map((i) => ({ name: i.name, bytes: i.bytes })))
})
afterAll(() => {
  lines.length = 0
})

const TRAIN = {
  TRAIN_EPOCHS: '1',
  TRAIN_IMAGE_SIZE: '32',
  TRAIN_BATCH_SIZE: '16',
  TRAIN_WIDTH: '8',
  QUALITY_GATE_MAX_AGE_MAE: '100',
}

/** Uploads the archive under `key` and returns the job environment the trigger would pass for it. */
async function uploaded(runId: string, key = `datasets/${runId}.zip`): Promise<Record<string, string>> {
  await store.put(key, archive)
  const etag = s3().lastEventFor(key).s3.object.eTag
  await putJson(store, runKeys(runId).status, {
    runId,
    state: 'queued',
    jobId: `job-${runId}`,
    dataset: { key, etag },
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
  } satisfies RunStatus)
  return { STORE_BUCKET: BUCKET, DATASET_KEY: key, DATASET_ETAG: etag, RUN_ID: runId, ...TRAIN }
}

const deps = (over: Partial<JobProcessDeps> = {}): JobProcessDeps => ({
  initEngine: async () => ({ name: 'wasm', description: 'wasm (test)' }),
  openStore: () => store,
  usesGpu: () => undefined,
  gpuNames: async () => [],
  log: (line) => void lines.push(line),
  ...over,
})
const statusOf = async (runId: string) => (await getJson(store, runKeys(runId).status, RunStatus))!

describe('runJobProcess', () => {
  it('trains the uploaded version, records the device in metrics.json, promotes and exits 0', async () => {
    const env = await uploaded('ok-run')
    const engine = await initEngine()

    const code = await runJobProcess(env, deps({ initEngine: async () => engine }))

    expect(code).toBe(JOB_EXIT.SUCCEEDED)
    expect(await statusOf('ok-run')).toMatchObject({ state: 'succeeded', promoted: true, jobId: 'job-ok-run' })
    const metrics = await getJson(store, runKeys('ok-run').metrics, TrainMetrics)
    expect(metrics!.backend).toMatchObject({ name: engine.name, device: `CPU (${engine.name})` })
    expect(await getJson(store, LATEST_MODEL_KEY, Promotion)).toMatchObject({ runId: 'ok-run' })
  })

  it('fails with a clear reason when the dataset was replaced after the upload that started the run', async () => {
    const env = await uploaded('replaced-run')
    await store.put(env.DATASET_KEY!, Buffer.from('a different upload under the same key'))

    const code = await runJobProcess(env, deps())

    expect(code).toBe(JOB_EXIT.FAILED)
    expect(await statusOf('replaced-run')).toMatchObject({
      state: 'failed',
      reason: expect.stringMatching(/was replaced after this run's upload/),
    })
  })

  it('writes the failure of an environment that does not parse, when it still names the run and store', async () => {
    const { DATASET_KEY: _dropped, ...env } = await uploaded('bad-env-run')

    const code = await runJobProcess({ ...env, TRAIN_EPOCHS: '1' }, deps())

    expect(code).toBe(JOB_EXIT.FAILED)
    const status = await statusOf('bad-env-run')
    expect(status).toMatchObject({
      state: 'failed',
      jobId: 'job-bad-env-run',
      reason: expect.stringMatching(/invalid job environment: DATASET_KEY/),
    })
  })

  it('writes the failure of an engine that does not start', async () => {
    const env = await uploaded('no-engine-run')

    const code = await runJobProcess(
      env,
      deps({ initEngine: async () => Promise.reject(new Error('libtensorflow.so.2: cannot open')) })
    )

    expect(code).toBe(JOB_EXIT.FAILED)
    expect(await statusOf('no-engine-run')).toMatchObject({
      state: 'failed',
      reason: 'could not start training: libtensorflow.so.2: cannot open',
    })
  })

  it('fails fast when tensorflow-gpu was asked for and TensorFlow reports no GPU', async () => {
    const env = { ...(await uploaded('no-gpu-run')), AGEGENDER_BACKEND: 'tensorflow-gpu' }

    const code = await runJobProcess(
      env,
      deps({
        initEngine: async () => ({ name: 'tensorflow', description: 'tensorflow (gpu build)' }),
        usesGpu: () => false,
        gpuNames: async () => [],
      })
    )

    expect(code).toBe(JOB_EXIT.FAILED)
    const status = await statusOf('no-gpu-run')
    expect(status.state).toBe('failed')
    expect(status.reason).toMatch(/tensorflow-gpu, but TensorFlow reports no GPU device.*nvidia-smi lists no GPU/)
    expect(await getJson(store, runKeys('no-gpu-run').metrics, TrainMetrics)).toBeUndefined()
  })

  it('on SIGTERM leaves the run running for the retry and exits with the retried code', async () => {
    const env = await uploaded('stopped-run')
    const controller = new AbortController()
    controller.abort(new Error('stopped by SIGTERM'))

    const code = await runJobProcess(env, deps({ signal: controller.signal }))

    expect(code).toBe(JOB_EXIT.INTERRUPTED)
    expect(await statusOf('stopped-run')).toMatchObject({
      state: 'running',
      interrupted: true,
      reason: expect.stringMatching(/^interrupted \(stopped by SIGTERM\)/),
    })
  })
})

describe('device decision', () => {
  it('reads tfjs-node’s GPU flag and names the GPU', () => {
    expect(usesGpu({ isUsingGpuDevice: true })).toBe(true)
    expect(usesGpu({ binding: { isUsingGpuDevice: () => false } })).toBe(false)
    expect(usesGpu({ name: 'wasm' })).toBeUndefined()
    expect(deviceReport('tensorflow', true, ['Tesla T4'])).toEqual({ kind: 'GPU', description: 'GPU (Tesla T4)' })
    expect(deviceReport('tensorflow', false, ['Tesla T4'])).toEqual({ kind: 'CPU', description: 'CPU (tensorflow)' })
  })

  it('requires a GPU only when tensorflow-gpu was asked for', () => {
    const gpu = deviceReport('tensorflow', true, ['NVIDIA A10G'])
    const cpu = deviceReport('tensorflow', false, ['NVIDIA A10G'])
    expect(deviceProblem('tensorflow-gpu', gpu, ['NVIDIA A10G'])).toBeUndefined()
    expect(deviceProblem('auto', cpu, [])).toBeUndefined()
    expect(deviceProblem('tensorflow-gpu', cpu, ['NVIDIA A10G'])).toMatch(
      /driver lists NVIDIA A10G, so TensorFlow could not use it/
    )
  })
})

describe('promote', () => {
  beforeEach(async () => {
    await store.delete(LATEST_MODEL_KEY)
  })

  it('never lets a run created earlier replace the pointer to a later one, whatever finishes first', async () => {
    await promote(store, 'run-new', undefined, '2026-11-20T10:00:00.000Z')

    const older = await promote(store, 'run-old', undefined, '2026-11-20T09:00:00.000Z')

    expect(older).toMatchObject({ promoted: false, reason: expect.stringMatching(/already points at run-new/) })
    expect(await getJson(store, LATEST_MODEL_KEY, Promotion)).toMatchObject({ runId: 'run-new' })
  })

  it('of concurrent promotions the latest-created run ends up served', async () => {
    const created = [
      '2026-11-21T08:00:00.000Z',
      '2026-11-21T09:00:00.000Z',
      '2026-11-21T07:00:00.000Z',
      '2026-11-21T08:30:00.000Z',
    ]

    await Promise.all(created.map((at, i) => promote(store, `race-${i}`, undefined, at)))

    expect(await getJson(store, LATEST_MODEL_KEY, Promotion)).toMatchObject({
      runId: 'race-1',
      runCreatedAt: created[1],
    })
  })
})
