/**
 * An exponential moving average of a model's weights (Polyak averaging, as timm's `ModelEmaV2`).
 *
 * After each optimizer step every weight `w`, trainable and BatchNorm statistics alike, moves its average
 * `a ← d·a + (1 − d)·w`, with `d = min(decay, (1 + step) / (10 + step))` so that the average does not remember
 * the random start for long. The trainer validates, picks the best epoch and exports with the averages swapped
 * in, and keeps training the raw weights.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { blendVariables } from '../core/engine/index.js'

export class WeightAverage {
  private readonly averages: tf.Variable[]

  constructor(
    private readonly model: tf.LayersModel,
    readonly decay: number
  ) {
    if (!(decay > 0 && decay < 1)) throw new Error(`the average's decay must be in (0, 1), got ${decay}`)
    this.averages = model.weights.map((w) => tf.variable(w.read(), false))
  }

  /** The decay used after optimizer step `step` (0-based). */
  decayAt(step: number): number {
    return Math.min(this.decay, (1 + step) / (10 + step))
  }

  /** Moves every average towards the model's current weights; call after optimizer step `step`. */
  update(step: number): void {
    blendVariables(
      this.averages,
      this.model.weights.map((w) => w.read()),
      this.decayAt(step)
    )
  }

  /** Exchanges the model's weights and the averages; calling it twice restores both. */
  swap(): void {
    tf.tidy(() => {
      this.model.weights.forEach((w, i) => {
        const a = this.averages[i]!
        const current = w.read().clone()
        w.write(a.clone())
        a.assign(current)
      })
    })
  }

  /** Runs `fn` with the averages in the model, then puts the raw weights back (also when `fn` throws). */
  async withAverages<T>(fn: () => Promise<T>): Promise<T> {
    this.swap()
    try {
      return await fn()
    } finally {
      this.swap()
    }
  }

  /** The averages as named tensors, for a checkpoint. */
  named(): Array<{ name: string; tensor: tf.Tensor }> {
    return this.model.weights.map((w, i) => ({ name: `average/${w.originalName}`, tensor: this.averages[i]! }))
  }

  /** Restores averages saved with {@link named}. */
  restore(map: tf.NamedTensorMap): void {
    this.model.weights.forEach((w, i) => {
      const saved = map[`average/${w.originalName}`]
      if (!saved) throw new Error(`the checkpoint has no average for ${w.originalName}`)
      this.averages[i]!.assign(saved)
    })
  }

  dispose(): void {
    tf.dispose(this.averages)
  }
}
