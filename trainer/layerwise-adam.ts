/**
 * Adam with one learning rate for the heads and a scaled one for the backbone, for fine-tuning pretrained
 * weights: the new heads learn at the full rate while the ImageNet features move slowly (scale 0 = frozen).
 *
 * It is two stock Adam optimizers behind the `tf.Optimizer` interface, each owning a fixed set of variables, so
 * the engine's fused Adam still runs for each half and checkpoints (`getWeights`/`setWeights`) keep the format
 * of a single Adam: the iteration count, then every first moment, then every second moment.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { applyGradients, type NamedGradient } from '../core/engine/index.js'

type NamedTensor = { name: string; tensor: tf.Tensor }

export class LayerwiseAdam extends tf.Optimizer {
  private readonly heads: tf.AdamOptimizer
  private readonly backbone: tf.AdamOptimizer
  private rate: number

  /**
   * @param headVariables names of the variables that learn at the full rate; every other variable is backbone.
   * @param backboneScale backbone rate = `learningRate * backboneScale`; change it between steps to unfreeze.
   */
  constructor(
    learningRate: number,
    private readonly headVariables: ReadonlySet<string>,
    public backboneScale: number
  ) {
    super()
    this.heads = tf.train.adam(learningRate)
    this.backbone = tf.train.adam(learningRate * backboneScale)
    this.rate = learningRate
  }

  get learningRate(): number {
    return this.rate
  }

  /** Sets the heads' rate, and the backbone's to `rate * backboneScale`. */
  set learningRate(rate: number) {
    this.rate = rate
    ;(this.heads as unknown as { learningRate: number }).learningRate = rate
    ;(this.backbone as unknown as { learningRate: number }).learningRate = rate * this.backboneScale
  }

  override applyGradients(grads: tf.NamedTensorMap | NamedGradient[]): void {
    const list: NamedGradient[] = Array.isArray(grads)
      ? grads
      : Object.entries(grads).map(([name, tensor]) => ({ name, tensor }))
    this.learningRate = this.rate
    applyGradients(
      this.heads,
      list.filter((g) => this.headVariables.has(g.name))
    )
    applyGradients(
      this.backbone,
      list.filter((g) => !this.headVariables.has(g.name))
    )
  }

  override async getWeights(): Promise<NamedTensor[]> {
    const [iterations, ...heads] = await this.heads.getWeights()
    const [, ...backbone] = await this.backbone.getWeights()
    const half = (xs: NamedTensor[]) => [xs.slice(0, xs.length / 2), xs.slice(xs.length / 2)] as const
    const [hm, hv] = half(heads)
    const [bm, bv] = half(backbone)
    return [iterations!, ...hm, ...bm, ...hv, ...bv]
  }

  /** Positional, like Adam's own: variable names differ between processes that build the model differently. */
  override async setWeights(weights: NamedTensor[]): Promise<void> {
    const [iterations, ...moments] = weights
    if (!iterations) throw new Error('optimizer state has no iteration count')
    const half = moments.length / 2
    const h = half === 0 ? 0 : this.headVariables.size
    if (!Number.isInteger(half) || half < h)
      throw new Error(`optimizer state has ${moments.length} moments, expected 2 per variable`)
    const firsts = moments.slice(0, half)
    const seconds = moments.slice(half)
    await this.heads.setWeights([iterations, ...firsts.slice(0, h), ...seconds.slice(0, h)])
    await this.backbone.setWeights([iterations, ...firsts.slice(h), ...seconds.slice(h)])
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.rate, backboneScale: this.backboneScale }
  }

  override dispose(): void {
    this.heads.dispose()
    this.backbone.dispose()
    super.dispose()
  }

  static get className(): string {
    return 'LayerwiseAdam'
  }
}

/** Names of the variables of the model's heads: `age` (or `age_logits` of a distribution head) and `gender`. */
export function headVariableNames(model: tf.LayersModel): Set<string> {
  const heads = new Set(['age_logits', 'age', 'gender'])
  return new Set(
    model.layers
      .filter((l) => heads.has(l.name))
      .flatMap((l) => l.trainableWeights.map((w) => (w.read() as tf.Variable).name))
  )
}
