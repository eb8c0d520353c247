import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { toInferenceModel } from '../../core/inference-model.js'
import { createModel } from '../../core/model.js'
import { defaultMeta, ModelMeta } from '../../core/model-io.js'
import { Predictor } from '../../core/predictor.js'
import { centreCrop, normalize, toUnitBatch } from '../../core/preprocess.js'
import { createRng } from '../../core/random.js'
import { randomizeBatchNorms } from '../../support/models.js'

const SIZE = 32

function randomImages(count: number, seed: number): Uint8Array[] {
  const rng = createRng(seed)
  return Array.from({ length: count }, () =>
    Uint8Array.from({ length: SIZE * SIZE * 3 }, () => Math.floor(rng.next() * 256))
  )
}

describe('Predictor', () => {
  beforeAll(async () => {
    await initEngine()
  })

  it('averages each image with its mirror image, run as one batch, exactly as two separate passes would', async () => {
    // Prepare
    const model = createModel({ inputSize: SIZE, width: 8, seed: 1, ageBias: 30 })
    randomizeBatchNorms(model, 4)
    const images = randomImages(5, 2)
    const separate = tf.tidy(() => {
      const x = normalize(toUnitBatch(images, SIZE))
      const [a1, g1] = model.predict(x) as tf.Tensor[]
      const [a2, g2] = model.predict(tf.reverse(x, 2)) as tf.Tensor[]
      return [a1!.add(a2!).div(2).arraySync() as number[][], g1!.add(g2!).div(2).arraySync() as number[][]]
    })
    const unflipped = tf.tidy(
      () => (model.predict(normalize(toUnitBatch(images, SIZE))) as tf.Tensor[])[0]!.arraySync() as number[][]
    )
    // Act
    const flipped = await new Predictor(model, defaultMeta(SIZE)).predictDecoded(images, 2)
    // Assess
    flipped.forEach((p, i) => {
      expect(p.age).toBeCloseTo(separate[0]![i]![0]!, 4)
      expect(p.genderProbability).toBeCloseTo(separate[1]![i]![0]!, 5)
    })
    // the flip changes the answer, so the comparison above means something
    expect(Math.max(...flipped.map((p, i) => Math.abs(p.age - unflipped[i]![0]!)))).toBeGreaterThan(1e-3)
    model.dispose()
  })

  it('predicts on the centre crop its meta names, so a model trained on crops is served as it was trained', async () => {
    const model = createModel({ inputSize: SIZE, width: 8, seed: 3, ageBias: 30 })
    randomizeBatchNorms(model, 5)
    const images = randomImages(3, 4)
    const expected = tf.tidy(
      () =>
        (
          model.predict(centreCrop(normalize(toUnitBatch(images, SIZE)), 0.9)) as tf.Tensor[]
        )[0]!.arraySync() as number[][]
    )
    const whole = await new Predictor(model, defaultMeta(SIZE, { testTimeFlip: false })).predictDecoded(images)
    const cropped = await new Predictor(
      model,
      defaultMeta(SIZE, { testTimeFlip: false, centreCrop: 0.9 })
    ).predictDecoded(images)
    for (const [i, p] of cropped.entries()) expect(p.age).toBeCloseTo(expected[i]![0]!, 4)
    expect(Math.max(...cropped.map((p, i) => Math.abs(p.age - whole[i]!.age)))).toBeGreaterThan(1e-3)
    model.dispose()
  })

  it('reads a meta.json from before centre crops as the whole image', () => {
    const { centreCrop: _, ...older } = defaultMeta(SIZE, { centreCrop: 0.9 })
    expect(ModelMeta.parse(older).centreCrop).toBe(1)
    expect(ModelMeta.parse({ ...older, centreCrop: 0.9 }).centreCrop).toBe(0.9)
    expect(ModelMeta.safeParse({ ...older, centreCrop: 0 }).success).toBe(false)
  })

  it('answers the same with BatchNorm folded as with the trained model', async () => {
    const model = createModel({ inputSize: SIZE, width: 8, seed: 5, ageBias: 30 })
    randomizeBatchNorms(model, 6)
    const images = randomImages(7, 3)
    const meta = defaultMeta(SIZE)
    const { model: folded } = await toInferenceModel(model)
    const [a, b] = await Promise.all([
      new Predictor(model, meta).predictDecoded(images),
      new Predictor(folded, meta).predictDecoded(images),
    ])
    a.forEach((p, i) => {
      expect(Math.abs(p.age - b[i]!.age)).toBeLessThan(1e-4 * Math.max(1, p.age))
      expect(Math.abs(p.genderProbability - b[i]!.genderProbability)).toBeLessThan(1e-5)
      expect(b[i]!.gender).toBe(p.gender)
    })
    model.dispose()
    folded.dispose()
  })
})
