/**
 * Fault suite for the local system (issue 9 item 11), with real training jobs on tiny settings:
 * - kill -9 of the job mid-epoch, and of the runner (`npm start`) itself: the run resumes from its last epoch
 *   checkpoint, losing at most the epoch in progress;
 * - the S3 server stopped mid-run: the job ends (no hang) and, once S3 is back, the run is `failed` with a reason;
 * - duplicate and concurrent deliveries of one upload event: one run, one job.
 * Prints what happened in each.
 */
import { S3Client } from '@aws-sdk/client-s3'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isTerminal, readRun, runIdFor, type RunStatus } from '../../core/runs.js'
import { FolderStore } from '../../core/store/folder-store.js'
import type { ObjectStore } from '../../core/store/object-store.js'
import { S3Store } from '../../core/store/s3-store.js'
import { createHandler, jobNameFor, submitRun, type RunRequest } from '../../functions/trigger/index.js'
import { startEmbeddedS3 } from '../../local/embedded-s3.js'
import { createJobRunner } from '../../local/job-runner.js'
import { readLocalCredentials } from '../../local/s3-auth.js'
import { startLocalSystem } from '../../local/system.js'
import { makeImages, tarBuffer } from '../../support/images.js'

const TRAIN_ENV = {
  TRAIN_EPOCHS: '3',
  TRAIN_IMAGE_SIZE: '32',
  TRAIN_WIDTH: '8',
  TRAIN_BATCH_SIZE: '16',
  QUALITY_GATE_MAX_AGE_MAE: '100',
}
const REPO = fileURLToPath(new URL('../..', import.meta.url))

let work: string
let dataset: Buffer

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'local-faults-'))
  const images = await makeImages({ count: 480, size: 40, seed: 31 })
  dataset = await tarBuffer(
    images.map((i) => ({ name: i.name, bytes: i.bytes })),
    { gzip: true }
  )
})
afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

describe('local system faults', () => {
  it('kill -9 of the job mid-epoch: the run resumes from its last checkpoint and succeeds', async () => {
    const lines: string[] = []
    const system = await startLocalSystem({
      dataDir: join(work, 'kill-job'),
      s3Port: 0,
      predictPort: 0,
      trainEnv: TRAIN_ENV,
      stopGraceSeconds: 1,
      log: (l) => lines.push(l),
    })
    try {
      await system.store.put('datasets/faces.tar.gz', dataset)
      const runId = runIdFor('datasets/faces.tar.gz', (await system.store.head('datasets/faces.tar.gz'))!.etag!)
      const reached = await untilEpoch(system.store, runId, 1)
      // Act: the job, not the runner, dies
      process.kill(system.runner.running!.pid!, 'SIGKILL')
      // Assess
      const status = await waitForEnd(system.store, runId)
      const log = Buffer.from((await system.store.get(`runs/${runId}/log.txt`)) ?? []).toString()
      const resumed = Number(/resumed after epoch (\d+)/.exec(log)?.[1])
      console.info(
        `kill -9 job: killed during epoch ${reached + 1}, resumed after epoch ${resumed}, ended ${status.state} on attempt ${status.attempt}`
      )
      expect(status, lines.slice(-10).join('\n')).toMatchObject({ state: 'succeeded', attempt: 2 })
      expect(resumed).toBeGreaterThanOrEqual(reached)
    } finally {
      await system.stop()
    }
  })

  it('kill -9 of the runner: its job stops, and the next start resumes the run from its last checkpoint', async () => {
    const dataDir = join(work, 'kill-runner')
    // Prepare: `npm start` as a separate process
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'local/start.ts',
        '--data-dir',
        dataDir,
        '--s3-port',
        '0',
        '--predict-port',
        '0',
        '--epochs',
        '3',
        '--image-size',
        '32',
        '--width',
        '8',
        '--batch-size',
        '16',
        '--quality-gate',
        '100',
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }
    )
    let output = ''
    child.stdout.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr.on('data', (c: Buffer) => (output += c.toString()))
    await until(
      async () => existsSync(join(dataDir, 'endpoints.json')),
      120_000,
      () => output
    )
    const { s3Endpoint } = JSON.parse(await readFile(join(dataDir, 'endpoints.json'), 'utf8')) as { s3Endpoint: string }
    const client = new S3Client({
      endpoint: s3Endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: readLocalCredentials(dataDir)!,
    })
    const first = new S3Store({ bucket: 'agegender', client })
    await first.put('datasets/faces.tar.gz', dataset)
    const runId = runIdFor('datasets/faces.tar.gz', (await first.head('datasets/faces.tar.gz'))!.etag!)
    const reached = await untilEpoch(first, runId, 1)
    client.destroy()
    // Act
    child.kill('SIGKILL')
    await new Promise((done) => child.once('close', done))
    const lines: string[] = []
    const system = await startLocalSystem({
      dataDir,
      s3Port: 0,
      predictPort: 0,
      trainEnv: TRAIN_ENV,
      stopGraceSeconds: 1,
      log: (l) => lines.push(l),
    })
    try {
      // Assess
      expect(system.recovered.resumed).toEqual([runId])
      const status = await waitForEnd(system.store, runId)
      const log = Buffer.from((await system.store.get(`runs/${runId}/log.txt`)) ?? []).toString()
      const resumed = Number(/resumed after epoch (\d+)/.exec(log)?.[1])
      console.info(
        `kill -9 runner: killed during epoch ${reached + 1}, resumed after epoch ${resumed}, ended ${status.state} on attempt ${status.attempt}`
      )
      expect(status, lines.slice(-10).join('\n')).toMatchObject({ state: 'succeeded', attempt: 2 })
      expect(resumed).toBeGreaterThanOrEqual(reached)
    } finally {
      await system.stop()
    }
  })

  it('S3 stopped mid-run: the job ends instead of hanging, and the run is failed with a reason once S3 is back', async () => {
    const directory = join(work, 's3-stop')
    let s3 = await startEmbeddedS3({ directory, bucket: 'agegender' })
    const { port, credentials } = s3
    const client = new S3Client(s3.clientConfig)
    const store = new S3Store({ bucket: 'agegender', client })
    const lines: string[] = []
    const runner = createJobRunner({
      store,
      env: { ...s3.env, ...TRAIN_ENV },
      log: (l) => lines.push(l),
      statusRetryMs: 120_000,
    })
    try {
      await store.put('datasets/faces.tar.gz', dataset)
      const etag = (await store.head('datasets/faces.tar.gz'))!.etag!
      const runId = runIdFor('datasets/faces.tar.gz', etag)
      const run: RunRequest = {
        runId,
        jobName: jobNameFor(runId),
        bucket: 'agegender',
        datasetKey: 'datasets/faces.tar.gz',
        datasetVersion: etag,
        etag,
      }
      await submitRun(run, { store, submitter: runner })
      await untilEpoch(store, runId, 0)
      // Act: S3 goes away mid-run
      await s3.stop()
      await until(
        async () => lines.some((l) => l.includes(`${runId}: job exited`)),
        180_000,
        () => lines.slice(-5).join('\n')
      )
      s3 = await startEmbeddedS3({ directory, bucket: 'agegender', port, credentials })
      await runner.idle()
      // Assess
      const status = (await readRun(store, runId))!
      console.info(`S3 stopped: ${status.state}: ${status.reason}`)
      expect(status.state).toBe('failed')
      expect(status.reason).toMatch(/training job exited with code 1/)
    } finally {
      await runner.stop()
      client.destroy()
      await s3.stop()
    }
  })

  it('duplicate and concurrent deliveries of one upload event start one run and one job', async () => {
    const store = new FolderStore(join(work, 'dups'))
    const trace = join(work, 'dups-trace.txt')
    await writeFile(trace, '')
    const runner = createJobRunner({
      store,
      env: { FAKE_STORE_DIR: store.root, FAKE_TRACE: trace },
      command: [process.execPath, fileURLToPath(new URL('../local/fixtures/fake-job.mjs', import.meta.url))],
      log: () => {},
    })
    const handler = createHandler({ store, submitter: runner, bucket: 'b', log: () => {} })
    const event = { Records: [s3Record('datasets/ok.zip', 'etag-ok')] }
    try {
      // Act: five at once, then two late repeats (S3 delivers at least once)
      await Promise.all(Array.from({ length: 5 }, () => handler(event)))
      await runner.idle()
      await handler(event)
      await handler(event)
      await runner.idle()
      // Assess
      const starts = (await readFile(trace, 'utf8')).split('\n').filter((l) => l.startsWith('start'))
      const status = await readRun(store, runIdFor('datasets/ok.zip', 'etag-ok'))
      console.info(`duplicates: 7 deliveries → ${starts.length} job start(s), run ${status?.state}`)
      expect(starts).toHaveLength(1)
      expect(status?.state).toBe('succeeded')
    } finally {
      await runner.stop()
    }
  })
})

function s3Record(key: string, eTag: string) {
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-east-1',
    eventTime: new Date().toISOString(),
    eventName: 'ObjectCreated:Put',
    userIdentity: { principalId: 'x' },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': 'r', 'x-amz-id-2': 'i' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'c',
      bucket: { name: 'b', ownerIdentity: { principalId: 'x' }, arn: 'arn:aws:s3:::b' },
      object: { key, size: 10, eTag, sequencer: '0000000000000001' },
    },
  }
}

/** Waits until the run is running with at least `epoch` epochs done; returns the epoch reached. */
async function untilEpoch(store: ObjectStore, runId: string, epoch: number): Promise<number> {
  let status: RunStatus | undefined
  await until(async () => {
    status = await readRun(store, runId).catch(() => undefined)
    if (status && isTerminal(status.state)) throw new Error(`run ended early: ${JSON.stringify(status)}`)
    return status?.state === 'running' && status.epoch !== undefined && status.epoch >= epoch
  }, 180_000)
  return status!.epoch!
}

async function waitForEnd(store: ObjectStore, runId: string): Promise<RunStatus> {
  let status: RunStatus | undefined
  await until(async () => {
    status = await readRun(store, runId).catch(() => undefined)
    return status !== undefined && isTerminal(status.state)
  }, 240_000)
  return status!
}

async function until(
  check: () => Promise<boolean>,
  timeoutMs: number,
  context: () => string = () => ''
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s ${context()}`)
    await new Promise((done) => setTimeout(done, 200))
  }
}
