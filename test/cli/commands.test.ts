import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { LATEST_MODEL_KEY, type RunStatus } from '../../core/runs.js'
import { S3Store } from '../../core/store/s3-store.js'
import { putJson } from '../../core/store/object-store.js'
import { main } from '../../cli/main.js'
import { useTestS3 } from '../support/s3-server.js'
import { group, metricsDocument, metricsOf } from '../support/metrics.js'
import { captureIo } from './io.js'

const s3 = useTestS3('cli-runs')
const NOW = new Date('2025-03-01T12:00:00Z')

const run = (runId: string, patch: Partial<RunStatus>): RunStatus => ({
  runId,
  state: 'queued',
  dataset: { key: `datasets/${runId}.tar.gz`, etag: 'abc' },
  jobId: 'local-1-1',
  createdAt: '2025-03-01T11:00:00.000Z',
  updatedAt: '2025-03-01T11:58:00.000Z',
  ...patch,
})

const SUCCEEDED = run('faces-aaaaaaaaaa', {
  state: 'succeeded',
  epoch: 3,
  epochs: 3,
  promoted: true,
  reason: 'test age MAE 6.10 ≤ 12',
  summary: { testAgeMae: 6.1, testAgeRmse: 8.2, testCs5: 0.5, testGenderAccuracy: 0.91, testGenderMae: 0.1 },
  createdAt: '2025-03-01T10:00:00.000Z',
})
const FAILED = run('broken-bbbbbbbbbb', {
  state: 'failed',
  reason: 'no usable images: 6 unreadable',
  createdAt: '2025-03-01T10:30:00.000Z',
  updatedAt: '2025-03-01T11:59:30.000Z',
})
const RUNNING = run('bigger-cccccccccc', { state: 'running', epoch: 1, epochs: 3, reason: 'epoch 1 of 3 done' })

const METRICS = metricsDocument({
  runId: SUCCEEDED.runId,
  epochs: 3,
  test: metricsOf({
    ...group({ count: 120, ageMae: 6.1, ageRmse: 8.2, cs5: 0.5, genderAccuracy: 0.91, genderMae: 0.1 }),
    byAgeBand: { '0-9': group({ count: 10, ageMae: 3.2, ageRmse: 4, cs5: 0.8, genderAccuracy: 0.7 }) },
  }),
  val: metricsOf(group({ count: 100, ageMae: 6.4, ageRmse: 8.5, cs5: 0.48, genderAccuracy: 0.9, genderMae: 0.1 })),
  baselines: { medianAge: 30, medianAgeMae: 15.2, majorityGender: 'male', majorityGenderAccuracy: 0.52 },
  throughput: { trainImagesPerSecond: 140.5, evalImagesPerSecond: 400 },
  backend: { name: 'wasm', description: 'wasm (SIMD, 1 thread)' },
  dataset: {
    source: 's3://x',
    counts: { train: 800, val: 100, test: 120 },
    skipped: { 'bad-name': 2 },
    decodeFailures: 0,
  },
  config: { epochs: 3, imageSize: 64, batchSize: 32, width: 64 },
  timings: { totalSeconds: 95 },
})

describe('agegender runs / status / metrics', () => {
  let store: S3Store
  const cli = async (...argv: string[]) => {
    const io = captureIo({ now: () => NOW, sleep: async () => {} })
    const code = await main([...argv, '--bucket', s3().bucket], io)
    return { code, out: io.stdoutText(), err: io.stderrText() }
  }

  beforeEach(async () => {
    store = new S3Store({ bucket: s3().bucket, client: s3().client() })
    for (const o of await store.list('')) await store.delete(o.key)
  })

  const seed = async () => {
    for (const s of [SUCCEEDED, FAILED, RUNNING]) await putJson(store, `runs/${s.runId}/status.json`, s)
    await putJson(store, LATEST_MODEL_KEY, {
      runId: SUCCEEDED.runId,
      modelPrefix: `models/${SUCCEEDED.runId}/`,
      promotedAt: '2025-03-01T11:00:00Z',
    })
  }

  it('runs: a table, newest first, with epoch, test MAE, age of the update and a note', async () => {
    await seed()
    const { code, out } = await cli('runs')
    expect(code).toBe(0)
    const lines = out.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^RUN ID\s+STATE\s+EPOCH\s+TEST MAE\s+UPDATED\s+NOTE$/)
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([RUNNING.runId, FAILED.runId, SUCCEEDED.runId])
    expect(lines[1]).toMatch(/bigger-cccccccccc\s+running\s+1\/3\s+-\s+2m ago\s+epoch 1 of 3 done/)
    expect(lines[2]).toMatch(/broken-bbbbbbbbbb\s+failed\s+-\s+-\s+30s ago\s+no usable images: 6 unreadable/)
    expect(lines[3]).toMatch(/faces-aaaaaaaaaa\s+succeeded\s+3\/3\s+6\.10\s+2m ago\s+serving/)
  })

  it('runs: says how to start when the bucket has none', async () => {
    const { code, out } = await cli('runs')
    expect(code).toBe(0)
    expect(out).toContain('no runs yet')
  })

  it('status: fields of one run; exit 0 unless it failed', async () => {
    await seed()
    const ok = await cli('status', SUCCEEDED.runId)
    expect(ok.code).toBe(0)
    expect(ok.out).toMatch(/^run\s+faces-aaaaaaaaaa$/m)
    expect(ok.out).toMatch(/^state\s+succeeded \(serving\)$/m)
    expect(ok.out).toMatch(/^test\s+test age MAE 6\.10, gender accuracy 91\.0%$/m)
    const failed = await cli('status', FAILED.runId)
    expect(failed.code).toBe(1)
    expect(failed.out).toMatch(/^note\s+no usable images: 6 unreadable$/m)
    const missing = await cli('status', 'nope-0000000000')
    expect(missing.code).toBe(1)
    expect(missing.err).toContain('no run nope-0000000000')
    const usage = await cli('status')
    expect(usage.code).toBe(2)
    expect(usage.err).toContain('Usage: agegender status <runId>')
  })

  it('status --follow: waits for the run, prints each change, exits 0 on success and 1 on failure', async () => {
    // Prepare: the run appears, trains and ends as the polls go by
    const id = 'follow-dddddddddd'
    const steps: (RunStatus | undefined)[] = [
      undefined,
      run(id, { state: 'queued' }),
      run(id, { state: 'running', epoch: 0, epochs: 2, reason: 'training on 200 images' }),
      run(id, { state: 'running', epoch: 0, epochs: 2, reason: 'training on 200 images' }),
      run(id, { state: 'running', epoch: 1, epochs: 2, reason: 'epoch 1 of 2 done' }),
      run(id, {
        state: 'succeeded',
        epoch: 2,
        epochs: 2,
        promoted: true,
        summary: { testAgeMae: 7.25, testGenderAccuracy: 0.875 },
      }),
    ]
    let poll = 0
    const io = captureIo({
      now: () => NOW,
      sleep: async () => {
        const next = steps[++poll]
        if (next) await putJson(store, `runs/${id}/status.json`, next)
      },
    })
    // Act
    const code = await main(['status', id, '--follow', '--bucket', s3().bucket], io)
    // Assess: one line per change, none for a repeat
    expect(code).toBe(0)
    const lines = io
      .stdoutText()
      .trim()
      .split('\n')
      .map((l) => l.replace(/^\d\d:\d\d:\d\d {2}/, ''))
    expect(lines.slice(0, 5)).toEqual([
      `waiting for run ${id} to be queued...`,
      'queued',
      'running (epoch 0/2): training on 200 images',
      'running (epoch 1/2): epoch 1 of 2 done',
      'succeeded: test age MAE 7.25, gender accuracy 87.5%, promoted',
    ])
    expect(io.stdoutText()).toContain(`agegender metrics ${id}`)
    // and a failed run ends the follow with exit 1
    await putJson(store, `runs/${FAILED.runId}/status.json`, FAILED)
    const failed = await cli('status', FAILED.runId, '--follow')
    expect(failed.code).toBe(1)
    expect(failed.out).toContain('failed: no usable images: 6 unreadable')
  })

  it('status --follow: gives up, exit 1, when the run never appears (the trigger skipped the upload)', async () => {
    let polls = 0
    const io = captureIo({ now: () => NOW, sleep: async () => void polls++ })
    const code = await main(
      ['status', 'never-eeeeeeeeee', '--follow', '--interval', '2', '--appear', '10', '--bucket', s3().bucket],
      io
    )
    expect(code).toBe(1)
    expect(polls).toBe(5)
    expect(io.stderrText()).toMatch(/no run never-eeeeeeeeee after 10 s: the trigger did not start one/)
  })

  it('metrics: key figures, and where the report, model and log are; --report saves it', async () => {
    await seed()
    await putJson(store, `runs/${SUCCEEDED.runId}/metrics.json`, METRICS)
    await store.put(`runs/${SUCCEEDED.runId}/report.html`, '<html>report</html>')
    const dir = await mkdtemp(join(tmpdir(), 'cli-metrics-'))
    try {
      const { code, out } = await cli('metrics', SUCCEEDED.runId, '--report', join(dir, 'r.html'))
      expect(code).toBe(0)
      expect(out).toMatch(/^run\s+faces-aaaaaaaaaa \(succeeded, promoted, serving\)$/m)
      expect(out).toMatch(/^images\s+train 800, val 100, test 120; skipped 2 bad-name$/m)
      expect(out).toMatch(
        /^test\s+age MAE 6\.10 years, RMSE 8\.20, within 5 years 50\.0%, gender accuracy 91\.0% \(120 images\)$/m
      )
      expect(out).toMatch(/^baselines\s+median-age MAE 15\.20, majority-gender accuracy 52\.0%$/m)
      expect(out).toMatch(/^training\s+3 epochs \(best 3\), 64 px, width 64, 140\.5 images\/s, 1 min 35 s in all$/m)
      expect(out).toContain(`report      s3://${s3().bucket}/runs/${SUCCEEDED.runId}/report.html`)
      // the test server is on 127.0.0.1: a browser URL too
      expect(out).toContain(`${s3().server.endpoint}/${s3().bucket}/runs/${SUCCEEDED.runId}/report.html`)
      expect(out).toContain(`log         s3://${s3().bucket}/runs/${SUCCEEDED.runId}/log.txt`)
      expect(await readFile(join(dir, 'r.html'), 'utf8')).toBe('<html>report</html>')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('metrics: explains why there are none yet, or none at all', async () => {
    await seed()
    const running = await cli('metrics', RUNNING.runId)
    expect(running.code).toBe(1)
    expect(running.err).toContain('is running: metrics appear when it ends')
    const failed = await cli('metrics', FAILED.runId)
    expect(failed.err).toContain('failed, so it has no metrics: no usable images')
    expect((await cli('metrics', 'nope')).err).toContain('no run nope')
  })

  it('usage errors exit 2; an unknown command lists the commands', async () => {
    const io = captureIo()
    expect(await main(['frobnicate'], io)).toBe(2)
    expect(io.stderrText()).toMatch(/unknown command "frobnicate"[\s\S]*upload <folder\|archive>/)
    const io2 = captureIo()
    expect(await main(['runs', '--no-such-flag'], io2)).toBe(2)
    expect(io2.stderrText()).toContain("Unknown option '--no-such-flag'")
  })
})
