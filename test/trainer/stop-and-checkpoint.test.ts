/**
 * Stopping and checkpointing for Spot and Batch's SIGTERM: a stop request is honoured after the current step
 * with a checkpoint, timed checkpoints happen within an epoch, and a checkpoint cut short is never read.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { FolderStore } from '../../core/store/folder-store.js'
import { readCheckpointState } from '../../trainer/checkpoint.js'
import { parseTrainConfig } from '../../trainer/config.js'
import { loadDatasetForTraining } from '../../trainer/load.js'
import { train, TrainingStopped } from '../../trainer/train.js'
import type { TrainEvent, TrainOptions } from '../../trainer/train-types.js'
import { makeImages, writeFolder } from '../../support/images.js'

const SETTINGS = { epochs: 2, imageSize: 32, batchSize: 16, width: 8, learningRate: 3e-3, seed: 11 }
const quiet = () => {}

describe('stop and checkpoint', () => {
  let dataDir: string
  const dirs: string[] = []
  let base: Omit<TrainOptions, 'output'>

  beforeAll(async () => {
    const engine = await initEngine()
    const images = await makeImages({ count: 140, size: 40, seed: 5 })
    dataDir = await writeFolder(images.map((i) => ({ name: i.name, bytes: i.bytes })))
    const { items, dataset } = await loadDatasetForTraining({ path: dataDir }, quiet)
    base = { items, dataset, config: parseTrainConfig(SETTINGS), backend: engine, log: quiet, tty: false }
  })
  afterAll(async () => {
    await Promise.all([dataDir, ...dirs].map((d) => rm(d, { recursive: true, force: true })))
  })

  const freshStore = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agegender-stop-'))
    dirs.push(dir)
    return new FolderStore(dir)
  }

  it('stops after the step during which it was asked, checkpoints it, and resumes from the next batch', async () => {
    // Prepare: ask to stop once 3 steps are done (as the SIGTERM handler would, between two checks)
    const output = await freshStore()
    let steps = 0
    const stopped = train({ ...base, output, shouldStop: () => ++steps === 3 })

    // Act + Assess: the stop is a TrainingStopped with the checkpoint's position
    const error = await stopped.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TrainingStopped)
    expect(error).toMatchObject({ epochsDone: 0, batchesDone: 3, step: 3 })
    const state = await readCheckpointState(output)
    expect(state).toMatchObject({ epochsDone: 0, batchesDone: 3, step: 3, prefix: 'checkpoint/a/' })
    expect(state!.epochSums!.loss).toBeGreaterThan(0)

    // Act: the retried attempt
    const events: TrainEvent[] = []
    const metrics = await train({ ...base, output, resume: true, onEvent: (e) => void events.push(e) })

    // Assess: continues at batch 4 of epoch 1 and ends with every step done exactly once
    expect(events.find((e) => e.type === 'resumed')).toEqual({ type: 'resumed', epochsDone: 0, batchesDone: 3 })
    expect(metrics.history.map((r) => r.epoch)).toEqual([1, 2])
    const batchesPerEpoch = Math.floor(metrics.dataset.counts.train! / SETTINGS.batchSize)
    const done = await readCheckpointState(output)
    expect(done).toMatchObject({ epochsDone: 2, step: SETTINGS.epochs * batchesPerEpoch })
    expect(done!.batchesDone ?? 0).toBe(0)
  })

  it('checkpoints within an epoch when the interval passes, alternating slots', async () => {
    // Prepare: a clock that advances one minute each time it is read
    const output = await freshStore()
    let minutes = 0
    const events: TrainEvent[] = []

    // Act
    const metrics = await train({
      ...base,
      config: parseTrainConfig({ ...SETTINGS, epochs: 1 }),
      output,
      checkpointEveryMinutes: 2,
      clock: () => ++minutes * 60_000,
      onEvent: (e) => void events.push(e),
    })

    // Assess: the clock is read once per step (and after each checkpoint), so a checkpoint falls after every
    // second step; none after the last batch, where the epoch's own checkpoint follows
    const batchesPerEpoch = Math.floor(metrics.dataset.counts.train! / SETTINGS.batchSize)
    expect(batchesPerEpoch).toBeGreaterThan(4)
    const expected = Array.from({ length: batchesPerEpoch - 1 }, (_, i) => i + 1).filter((n) => n % 2 === 0)
    const mid = events.filter((e) => e.type === 'checkpoint')
    expect(mid.map((e) => (e as { batchesDone: number }).batchesDone)).toEqual(expected)
    const prefixes = new Set((await output.list('checkpoint/')).map((o) => o.key.split('/')[1]))
    expect([...prefixes].sort()).toEqual(['a', 'b', 'best-a', 'state.json'])
  })

  it('never reads a checkpoint cut short: the flip to a new slot happens only after it is complete', async () => {
    // Prepare: a run stopped after 2 steps (slot a current), then a write into slot b that died half-way
    const output = await freshStore()
    let steps = 0
    await expect(train({ ...base, output, shouldStop: () => ++steps === 2 })).rejects.toBeInstanceOf(TrainingStopped)
    await output.put('checkpoint/b/model/model.json', '{"half": ')
    await output.put('checkpoint/b/optimizer.bin', new Uint8Array([1, 2, 3]))

    // Act: resume reads slot a
    const events: TrainEvent[] = []
    await train({
      ...base,
      config: parseTrainConfig({ ...SETTINGS }),
      output,
      resume: true,
      onEvent: (e) => void events.push(e),
    })

    // Assess
    expect(events.find((e) => e.type === 'resumed')).toEqual({ type: 'resumed', epochsDone: 0, batchesDone: 2 })
  })

  it('reads the slot state.json names (a broken current slot fails the resume)', async () => {
    const output = await freshStore()
    let steps = 0
    await expect(train({ ...base, output, shouldStop: () => ++steps === 2 })).rejects.toBeInstanceOf(TrainingStopped)
    await output.put('checkpoint/a/optimizer.bin', new Uint8Array([1, 2, 3]))

    await expect(train({ ...base, output, resume: true })).rejects.toThrow()
  })
})
