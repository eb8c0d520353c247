import os from 'node:os'
import { describe, expect, it } from 'vitest'
import { parseTrainArgs, UsageError } from '../../trainer/cli-args.js'
import { defaultWasmThreads, MAX_WASM_THREADS } from '../../core/engine/index.js'
import {
  EngineThreads,
  epochCost,
  learningRateAt,
  parseTrainConfig,
  replicasFor,
  resolveWorkers,
  TRAIN_ENV,
  trainingSecondsLeft,
  trainingSizeAt,
  trainingThreads,
} from '../../trainer/config.js'
import { parseJobEnv } from '../../trainer/job-run.js'
import { replicaRuntime } from '../../trainer/machine.js'

describe('training settings', () => {
  it('fills defaults and coerces strings from flags or the environment', () => {
    const c = parseTrainConfig({ epochs: '3', imageSize: '128', augment: 'false' } as never)
    expect(c).toMatchObject({ epochs: 3, imageSize: 128, batchSize: 32, augment: false, width: 64, workers: 'auto' })
    expect(parseTrainConfig({}).epochs).toBe(11)
  })

  it('decides --workers auto by the machine: a replica per core where each can convolve on our GEMM', () => {
    const wasm = { backend: 'wasm', gemm: true, cores: 2 }
    const auto = parseTrainConfig({})
    expect(replicasFor(auto, wasm)).toBe(2)
    expect(replicasFor(auto, { ...wasm, cores: 8 })).toBe(2) // shards of at least 16 of the 32 images
    expect(replicasFor(parseTrainConfig({ batchSize: 128 }), { ...wasm, cores: 8 })).toBe(8)
    expect(replicasFor(parseTrainConfig({ batchSize: 8 }), wasm)).toBe(1)
    expect(replicasFor(auto, { ...wasm, cores: 1 })).toBe(1)
    expect(replicasFor(auto, { ...wasm, gemm: false })).toBe(1) // Node 20: no relaxed SIMD, XNNPACK's threads
    expect(replicasFor(auto, { ...wasm, backend: 'tensorflow' })).toBe(1)
    expect(replicasFor(auto, { ...wasm, backend: 'cpu' })).toBe(1)
    expect(replicasFor(parseTrainConfig({ pretrained: 'w.safetensors' }), wasm)).toBe(1)
    expect(replicasFor(parseTrainConfig({ progressiveFrom: 48 }), wasm)).toBe(1)
    expect(replicasFor(parseTrainConfig({ workers: 3 }), { ...wasm, backend: 'cpu' })).toBe(3) // as asked
    expect(resolveWorkers(auto, wasm).workers).toBe(2)
    expect(parseTrainConfig({ workers: 'auto' }).workers).toBe('auto')
    expect(() => parseTrainConfig({ workers: 'all' } as never)).toThrow(/workers/)
  })

  it('takes the data-parallel worker count from --workers or TRAIN_WORKERS, at least 1', () => {
    expect(parseTrainArgs(['--data', 'd', '--out', 'o', '--workers', '2']).config).toMatchObject({ workers: '2' })
    expect(parseTrainConfig({ workers: '3' } as never).workers).toBe(3)
    expect(() => parseTrainConfig({ workers: 0 })).toThrow(/workers/)
  })

  it('runs the wasm engine on every core (up to 8) unless told otherwise or beside data-parallel replicas', () => {
    expect(defaultWasmThreads()).toBe(Math.min(MAX_WASM_THREADS, os.availableParallelism()))
    expect(trainingThreads(undefined, 1)).toBe(defaultWasmThreads())
    expect(trainingThreads(undefined, 2)).toBe(1)
    expect(trainingThreads(3, 2)).toBe(3)
    expect(parseTrainArgs(['--data', 'd', '--out', 'o', '--threads', '2']).threads).toBe('2')
    expect(EngineThreads.parse('4')).toBe(4)
    expect(() => EngineThreads.parse('0')).toThrow()
    expect(() => EngineThreads.parse(String(MAX_WASM_THREADS + 1))).toThrow()
    // the job: AGEGENDER_THREADS, else the same default, which TRAIN_WORKERS > 1 turns to 1
    const job = { STORE_BUCKET: 'b', DATASET_KEY: 'datasets/d.zip', RUN_ID: 'r1' }
    expect(parseJobEnv({ ...job, AGEGENDER_THREADS: '3' }).threads).toBe(3)
    const auto = replicasFor(parseTrainConfig({}), replicaRuntime('auto'))
    expect(parseJobEnv(job).threads).toBe(auto > 1 ? 1 : defaultWasmThreads())
    expect(parseJobEnv({ ...job, TRAIN_WORKERS: '1' }).threads).toBe(defaultWasmThreads())
    expect(parseJobEnv({ ...job, TRAIN_WORKERS: '1', AGEGENDER_BACKEND: 'tensorflow' }).threads).toBe(
      defaultWasmThreads()
    )
    expect(parseJobEnv({ ...job, TRAIN_WORKERS: '2' }).threads).toBe(1)
    expect(() => parseJobEnv({ ...job, AGEGENDER_THREADS: '0' })).toThrow(/AGEGENDER_THREADS/)
  })

  it('takes the age loss and gender label smoothing from flags or TRAIN_AGE_LOSS / TRAIN_GENDER_SMOOTHING', () => {
    const args = parseTrainArgs([
      '--data',
      'd',
      '--out',
      'o',
      '--age-loss',
      'mean-variance',
      '--gender-smoothing',
      '0.1',
    ])
    expect(parseTrainConfig(args.config)).toMatchObject({ ageLoss: 'mean-variance', genderSmoothing: 0.1 })
    expect(parseTrainConfig({})).toMatchObject({ ageLoss: 'dldl', genderSmoothing: 0 })
    expect(TRAIN_ENV.genderSmoothing).toBe('TRAIN_GENDER_SMOOTHING')
    expect(() => parseTrainConfig({ genderSmoothing: 0.5 })).toThrow(/genderSmoothing/)
    expect(() => parseTrainConfig({ ageLoss: 'kl' } as never)).toThrow(/ageLoss/)
  })

  it('rejects bad values naming the setting', () => {
    expect(() => parseTrainConfig({ imageSize: 100 })).toThrow(/imageSize: image size must be a multiple of 32/)
    expect(() => parseTrainConfig({ epochs: 0 })).toThrow(/epochs/)
  })

  it('estimates the training time left from the epochs timed so far, smaller epochs weighed by their pixels', () => {
    const plain = parseTrainConfig({ epochs: 11 })
    expect(trainingSecondsLeft(plain, [], 0)).toBeUndefined()
    const timed = [
      { epoch: 0, seconds: 100 },
      { epoch: 1, seconds: 110 },
      { epoch: 2, seconds: 90 },
    ]
    expect(trainingSecondsLeft(plain, timed, 3)).toBeCloseTo(800)
    expect(trainingSecondsLeft(plain, timed, 11)).toBe(0)
    // 9 epochs from 48 px at 64: 48, 48, 56, 56, 56, then 64; the first epoch cost (48 / 64)² of a full one
    const progressive = parseTrainConfig({ epochs: 9, progressiveFrom: 48 })
    expect(epochCost(progressive, 0)).toBeCloseTo(0.5625)
    const left = 0.5625 + 3 * (56 / 64) ** 2 + 4
    expect(trainingSecondsLeft(progressive, [{ epoch: 0, seconds: 56.25 }], 1)).toBeCloseTo(100 * left)
  })

  it('grows the training image size over the first two thirds of the epochs under progressive resizing', () => {
    const sizes = (input: Parameters<typeof parseTrainConfig>[0]) => {
      const c = parseTrainConfig(input)
      return Array.from({ length: c.epochs }, (_, e) => trainingSizeAt(c, e))
    }
    expect(sizes({ epochs: 9, progressiveFrom: 48 })).toEqual([48, 48, 56, 56, 56, 64, 64, 64, 64])
    expect(sizes({ epochs: 5, imageSize: 128, progressiveFrom: 64 })).toEqual([64, 88, 104, 128, 128])
    expect(sizes({ epochs: 4 })).toEqual([64, 64, 64, 64])
    expect(sizes({ epochs: 1, progressiveFrom: 32 })).toEqual([64])
    const args = parseTrainArgs(['--data', 'd', '--out', 'o', '--progressive-from', '48'])
    expect(parseTrainConfig(args.config).progressiveFrom).toBe(48)
    expect(TRAIN_ENV.progressiveFrom).toBe('TRAIN_PROGRESSIVE_FROM')
    expect(() => parseTrainConfig({ progressiveFrom: 50 })).toThrow(/progressiveFrom: .*multiple of 8/)
    expect(() => parseTrainConfig({ progressiveFrom: 96 })).toThrow(/progressiveFrom: .*above the image size 64/)
    expect(() => parseTrainConfig({ progressiveFrom: 48, workers: 2 })).toThrow(/progressiveFrom: .*one worker/)
  })

  it('warms the learning rate up, then decays it by a cosine to the floor', () => {
    const c = parseTrainConfig({ learningRate: 1e-3, warmupFraction: 0.1, minLearningRateRatio: 0.01 })
    const total = 100
    expect(learningRateAt(c, 0, total)).toBeCloseTo(1e-4)
    expect(learningRateAt(c, 9, total)).toBeCloseTo(1e-3)
    expect(learningRateAt(c, 10, total)).toBeCloseTo(1e-3)
    expect(learningRateAt(c, 55, total)).toBeCloseTo(1e-5 + (1e-3 - 1e-5) * 0.5)
    expect(learningRateAt(c, 100, total)).toBeCloseTo(1e-5)
  })

  it('parses the train command line', () => {
    const a = parseTrainArgs([
      '--data',
      'd.zip',
      '--out',
      'o',
      '--epochs',
      '2',
      '--image-size',
      '96',
      '--no-augment',
      '--resume',
    ])
    expect(a).toMatchObject({
      data: 'd.zip',
      out: 'o',
      resume: true,
      config: { epochs: '2', imageSize: '96', augment: false },
    })
    expect(() => parseTrainArgs(['--out', 'o'])).toThrow(UsageError)
    expect(() => parseTrainArgs(['--data', 'd', '--out', 'o', '--bogus'])).toThrow(/bogus/)
  })
})
