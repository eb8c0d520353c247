/**
 * The job process as Batch runs it (`node --import tsx trainer/bin/job.ts`), against the embedded S3 server:
 * SIGTERM during training saves a checkpoint and exits with the code the retry strategy retries, and the next
 * attempt resumes from that checkpoint.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { runKeys, RunStatus } from '../../core/runs.js'
import { getJson } from '../../core/store/object-store.js'
import { S3Store } from '../../core/store/s3-store.js'
import { CheckpointState } from '../../core/train-documents.js'
import { JOB_EXIT } from '../../trainer/exit-codes.js'
import { makeImages, zipBuffer } from '../../support/images.js'
import { useTestS3 } from '../support/s3-server.js'

const BUCKET = 'job-signal'
const RUN = 'signal-run'
const KEY = 'datasets/signal.zip'
const JOB = fileURLToPath(new URL('../../trainer/bin/job.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const s3 = useTestS3(BUCKET)
let store: S3Store

beforeAll(async () => {
  store = new S3Store({ bucket: BUCKET, client: s3().client() })
  const images = await makeImages({ count: 120, size: 40, seed: 13 })
  await store.put(KEY, await zipBuffer(images.map((i) => ({ name: i.name, bytes: i.bytes }))))
})

/** Starts the job; resolves its exit code. `onStatus` sees every status.json it polls while the job runs. */
function runJob(env: Record<string, string>, onStatus: (s: RunStatus | undefined, kill: () => void) => void) {
  const child = spawn(process.execPath, ['--import', 'tsx', JOB], {
    cwd: ROOT,
    env: { ...process.env, ...s3().server.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((done) => child.once('close', (code) => done(code)))
  let running = true
  void exited.then(() => (running = false))
  void (async () => {
    while (running) {
      onStatus(await getJson(store, runKeys(RUN).status, RunStatus).catch(() => undefined), () => child.kill('SIGTERM'))
      await sleep(50)
    }
  })()
  return { exited, stderr: () => stderr }
}

describe('job process', () => {
  it('on SIGTERM checkpoints, exits 75, and the retried attempt resumes from the checkpoint', async () => {
    const env = {
      STORE_BUCKET: BUCKET,
      DATASET_KEY: KEY,
      RUN_ID: RUN,
      AGEGENDER_BACKEND: 'wasm',
      TRAIN_EPOCHS: '40',
      TRAIN_IMAGE_SIZE: '32',
      TRAIN_BATCH_SIZE: '8',
      TRAIN_WIDTH: '8',
      QUALITY_GATE_MAX_AGE_MAE: '100',
    }
    // Act: stop the first attempt once it trains
    let sent = false
    const first = runJob(env, (status, kill) => {
      if (!sent && status?.reason?.startsWith('training on')) {
        sent = true
        kill()
      }
    })
    const code = await first.exited

    // Assess: the retried exit code, the run left running for the retry, a checkpoint to resume from
    expect(code, first.stderr()).toBe(JOB_EXIT.INTERRUPTED)
    const status = await getJson(store, runKeys(RUN).status, RunStatus)
    expect(status).toMatchObject({
      state: 'running',
      interrupted: true,
      reason: expect.stringMatching(/^interrupted \(stopped by SIGTERM\)/),
    })
    const state = await getJson(store, `${runKeys(RUN).checkpoint}state.json`, CheckpointState)
    expect(state).toBeDefined()
    const stepsBefore = state!.step

    // Act: attempt 2, stopped again as soon as it says it resumed (no need to train 40 epochs)
    let resumedNote: string | undefined
    const second = runJob({ ...env, AWS_BATCH_JOB_ATTEMPT: '2' }, (s, kill) => {
      if (resumedNote === undefined && s?.attempt === 2 && s.reason?.startsWith('training on')) {
        resumedNote = s.reason
        kill()
      }
    })
    expect(await second.exited, second.stderr()).toBe(JOB_EXIT.INTERRUPTED)
    expect(second.stderr()).toMatch(
      new RegExp(`resumed after epoch ${state!.epochsDone}(, batch ${state!.batchesDone})?`)
    )
    const after = await getJson(store, `${runKeys(RUN).checkpoint}state.json`, CheckpointState)
    expect(after!.step).toBeGreaterThanOrEqual(stepsBefore)
  })
})
