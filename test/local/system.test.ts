/**
 * The local system end to end: embedded S3 + trigger + job runner (real `tsx trainer/bin/job.ts` children) +
 * predict server, driven as a user would (CLI upload, S3 PutObject, HTTP), including a restart mid-run.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isTerminal, LATEST_MODEL_KEY, Promotion, readRun, runIdFor, type RunStatus } from '../../core/runs.js'
import { getJson } from '../../core/store/object-store.js'
import { main } from '../../cli/main.js'
import { startLocalSystem, type LocalSystem } from '../../local/system.js'
import { corruptImage, makeImages, tarBuffer } from '../../support/images.js'
import { captureIo } from '../cli/io.js'

// Tiny settings: a run takes seconds. The gate is off (a 2-epoch model cannot reach MAE 12): promotion is tested.
const TRAIN_ENV = {
  TRAIN_EPOCHS: '2',
  TRAIN_IMAGE_SIZE: '32',
  TRAIN_WIDTH: '8',
  TRAIN_BATCH_SIZE: '16',
  QUALITY_GATE_MAX_AGE_MAE: '100',
}

describe('local system', () => {
  let work: string
  let dataDir: string
  let system: LocalSystem | undefined
  const logs: string[] = []
  let firstRunId: string

  const start = () =>
    startLocalSystem({
      dataDir,
      s3Port: 0,
      predictPort: 0,
      trainEnv: TRAIN_ENV,
      refreshSeconds: 1,
      stopGraceSeconds: 1,
      log: (line) => logs.push(line),
    })

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'local-system-'))
    dataDir = join(work, 'data')
    system = await start()
  })
  afterAll(async () => {
    await system?.stop()
    await rm(work, { recursive: true, force: true })
  })

  // Each test waits for real training runs: generous limits for a loaded 2-core machine.
  it('trains, reports and promotes an uploaded dataset, then serves it over HTTP', { timeout: 180_000 }, async () => {
    const s = system!
    expect(existsSync(join(dataDir, 'endpoints.json'))).toBe(true)
    // Prepare: ~200 labelled faces as a .tar.gz
    const images = await makeImages({ count: 200, size: 48, seed: 11 })
    const archive = join(work, 'faces.tar.gz')
    await writeFile(
      archive,
      await tarBuffer(
        images.map((i) => ({ name: `UTKFace/${i.name}`, bytes: i.bytes })),
        { gzip: true }
      )
    )
    // Act: upload with the CLI, as a user would
    // no credentials in the environment: the CLI finds the ones the system saved in its data folder
    const io = captureIo({ env: { AGEGENDER_DATA_DIR: dataDir } })
    const code = await main(['upload', archive, '--endpoint', s.s3Endpoint, '--bucket', s.bucket], io)
    // Assess
    expect(code, io.stderrText()).toBe(0)
    const runId = /run (\S+) starts now/.exec(io.stdoutText())?.[1]
    expect(runId, io.stdoutText()).toBeDefined()
    firstRunId = runId!
    const status = await waitForEnd(s, firstRunId)
    expect(status, logs.slice(-20).join('\n')).toMatchObject({ state: 'succeeded', promoted: true })
    const keys = (await s.store.list(`runs/${firstRunId}/`)).map((o) => o.key)
    expect(keys).toEqual(
      expect.arrayContaining([
        `runs/${firstRunId}/metrics.json`,
        `runs/${firstRunId}/report.html`,
        `runs/${firstRunId}/model/model.json`,
      ])
    )
    // the runner saves the job's output once the process has exited, a moment after its final status
    await until(async () => (await s.store.head(`runs/${firstRunId}/log.txt`)) !== undefined, 10_000)
    expect((await getJson(s.store, LATEST_MODEL_KEY, Promotion))?.runId).toBe(firstRunId)
    expect((await s.store.list(`models/${firstRunId}/`)).length).toBeGreaterThan(0)
    // the predict server picks the promotion up and answers with that run's model
    const answer = await predictWith(s, images[0]!.bytes, firstRunId)
    expect(answer.images).toHaveLength(1)
    const [face] = answer.images[0]!.faces
    expect(face!.age).toBeGreaterThan(0)
    expect(['male', 'female']).toContain(face!.gender)
    expect(face!.genderProbability).toBeGreaterThanOrEqual(0)
    expect(face!.genderProbability).toBeLessThanOrEqual(1)
  })

  it('fails a run on an archive of corrupt images with the reason, and keeps serving the previous model', {
    timeout: 120_000,
  }, async () => {
    const s = system!
    // Prepare: UTKFace names, undecodable bytes
    const broken = await tarBuffer(
      Array.from({ length: 6 }, (_, i) => ({
        name: `${20 + i}_${i % 2}_0_2017010100000000${i}.jpg.chip.jpg`,
        bytes: corruptImage(i + 1),
      })),
      { gzip: true }
    )
    // Act: a plain S3 PutObject
    await s.store.put('datasets/broken.tar.gz', broken)
    const head = await s.store.head('datasets/broken.tar.gz')
    const runId = runIdFor('datasets/broken.tar.gz', head!.etag!)
    // Assess
    const status = await waitForEnd(s, runId)
    expect(status.state).toBe('failed')
    expect(status.reason, JSON.stringify(status)).toBeTruthy()
    const answer = await predictWith(s, (await makeImages({ count: 1, size: 48, seed: 12 }))[0]!.bytes, firstRunId)
    expect(answer.model.runId).toBe(firstRunId)
  })

  it('resumes a run interrupted by a restart, and does not redo finished ones', { timeout: 240_000 }, async () => {
    // Prepare: a larger dataset, so the run is still training when the system stops
    const images = await makeImages({ count: 640, size: 48, seed: 13 })
    const archive = await tarBuffer(
      images.map((i) => ({ name: i.name, bytes: i.bytes })),
      { gzip: true }
    )
    await system!.store.put('datasets/bigger.tar.gz', archive)
    const runId = runIdFor('datasets/bigger.tar.gz', (await system!.store.head('datasets/bigger.tar.gz'))!.etag!)
    await until(async () => {
      const st = await readRun(system!.store, runId)
      if (st && isTerminal(st.state)) throw new Error(`run ended before the restart: ${JSON.stringify(st)}`)
      return st?.state === 'running' && (st.epoch ?? 0) >= 1
    }, 90_000)
    // Act: stop mid-run, start again on the same data
    const secret = system!.env['AWS_SECRET_ACCESS_KEY']
    await system!.stop()
    expect(existsSync(join(dataDir, 'endpoints.json'))).toBe(false)
    system = undefined
    system = await start()
    // a shell that sourced env.sh before the restart still holds valid credentials
    expect(system.env['AWS_SECRET_ACCESS_KEY']).toBe(secret)
    // Assess
    expect(system.recovered.resumed).toEqual([runId])
    const status = await waitForEnd(system, runId)
    expect(status.state, status.reason).toBe('succeeded')
    expect(status.attempt).toBe(2)
    let log = ''
    await until(async () => {
      log = Buffer.from((await system!.store.get(`runs/${runId}/log.txt`)) ?? []).toString()
      return log.includes('--- attempt 2')
    }, 10_000)
    expect(log).toMatch(/resumed after epoch \d/)
    // the earlier runs stay as they ended
    expect((await readRun(system.store, firstRunId))?.state).toBe('succeeded')
    expect(logs.filter((l) => l.includes(`${firstRunId}: starting`))).toHaveLength(1)
    // and the newest promotion is served
    const answer = await predictWith(system, images[0]!.bytes, runId)
    expect(answer.model.runId).toBe(runId)
  })
})

interface PredictAnswer {
  images: { faces: { age: number; gender: string; genderProbability: number }[] }[]
  model: { runId: string }
}

/** Posts until the server answers with `runId`'s model (it re-reads models/latest.json every second). */
async function predictWith(s: LocalSystem, jpeg: Uint8Array, runId: string): Promise<PredictAnswer> {
  let last = ''
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(250)) {
    const res = await fetch(`${s.predictUrl}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: jpeg,
    })
    last = `${res.status} ${await res.text()}`
    if (res.ok) {
      const body = JSON.parse(last.slice(4)) as PredictAnswer
      if (body.model.runId === runId) return body
    }
  }
  throw new Error(`the predict server never served ${runId}; last answer: ${last}`)
}

async function waitForEnd(s: LocalSystem, runId: string, timeoutMs = 120_000): Promise<RunStatus> {
  let status: RunStatus | undefined
  await until(async () => {
    status = await readRun(s.store, runId)
    return status !== undefined && isTerminal(status.state)
  }, timeoutMs)
  return status!
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s`)
    await sleep(200)
  }
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))
