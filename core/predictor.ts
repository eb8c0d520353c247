/**
 * Inference over a loaded model: decoded images in, age and gender out. Used by evaluation and the predict API,
 * with the same preprocessing as training ({@link ./preprocess.ts}).
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import type { ModelMeta } from './model-io.js'
import { decodeImage, toModelInput } from './preprocess.js'

export interface AgeGender {
  /** Estimated age in years. */
  readonly age: number
  readonly gender: 'male' | 'female'
  /** Probability that the face is female. */
  readonly genderProbability: number
}

export class Predictor {
  constructor(
    readonly model: tf.LayersModel,
    readonly meta: ModelMeta
  ) {}

  /** Runs one dummy batch so the first real request does not pay for kernel set-up. */
  warmUp(): void {
    const s = this.meta.inputSize
    tf.tidy(() => {
      this.model.predict(tf.zeros([1, s, s, 3]))
    })
  }

  /**
   * @param images decoded RGB images `[size, size, 3]` at `meta.inputSize`.
   * @param batchSize how many images go through the network at once.
   */
  async predictDecoded(images: readonly Uint8Array[], batchSize = 64): Promise<AgeGender[]> {
    const out: AgeGender[] = []
    for (let i = 0; i < images.length; i += batchSize) {
      const chunk = images.slice(i, i + batchSize)
      const [ages, probs] = tf.tidy(() => {
        const x = toModelInput(chunk, this.meta.inputSize, this.meta.normalization, this.meta.centreCrop)
        if (!this.meta.testTimeFlip) {
          const [age, gender] = this.model.predict(x) as [tf.Tensor, tf.Tensor]
          return [age.reshape([-1]), gender.reshape([-1])]
        }
        // the images and their mirror images in one batch of 2n: one pass through the network, same outputs
        const n = chunk.length
        const [age, gender] = this.model.predict(tf.concat([x, tf.reverse(x, 2)])) as [tf.Tensor, tf.Tensor]
        const mean = (t: tf.Tensor) => t.reshape([2, n]).mean(0)
        return [mean(age), mean(gender)]
      })
      const [a, g] = await Promise.all([ages.data(), probs.data()])
      tf.dispose([ages, probs])
      for (let j = 0; j < chunk.length; j++) {
        const p = g[j]!
        out.push({ age: a[j]!, gender: p >= 0.5 ? 'female' : 'male', genderProbability: p })
      }
    }
    return out
  }

  /** Decodes image files (JPEG, PNG, WebP, ...) and predicts; throws ImageDecodeError on unreadable bytes. */
  async predictImages(files: readonly Uint8Array[]): Promise<AgeGender[]> {
    const decoded = await Promise.all(files.map((f) => decodeImage(f, this.meta.inputSize)))
    return this.predictDecoded(decoded)
  }
}
